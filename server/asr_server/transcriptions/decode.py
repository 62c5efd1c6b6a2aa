"""An upload's bytes, as they arrive, to 16 kHz mono PCM16: the one encoding every Riva
deployment takes, and one that can be cut anywhere.

WAV with integer or float samples is decoded as the bytes arrive (a 16 kHz mono PCM16
WAV's samples pass through untouched). Everything else libsndfile reads (FLAC, Ogg Opus
and Vorbis, MP3, G.711 WAV, RF64) needs a seekable file: its bytes are spooled to a
temporary file (in memory up to ``spool_bytes``, on disk past it) and decoded from there
block by block, in a worker thread. No path holds the whole upload in memory, and none
holds more than a block of decoded audio.

Limits are checked as the bytes and samples come: the size on every block received, the
duration from the header where it says (WAV sizes, FLAC's STREAMINFO, libsndfile's frame
count) and again on the samples decoded.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import tempfile
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable
from typing import IO, Any

import numpy as np
import soundfile as sf

from asr.audio import (
    TARGET_SAMPLE_RATE,
    StreamResampler,
    WavHeader,
    float32_to_pcm16,
    parse_wav_header,
)
from asr.errors import AudioFormatError

from .errors import NotAudioError
from .upload import (
    SNIFF_BYTES,
    Container,
    UploadLimits,
    check_duration,
    check_size,
    probe,
    sniff,
)

__all__ = ["decode_pcm16", "iter_upload"]

_MAX_WAV_HEADER = 1 << 20  # a WAV header (with LIST/INFO chunks) never needs more
_BLOCK_SECONDS = 5  # decoded per worker-thread call on the libsndfile path
_UNSIZED = (0, 0xFFFFFFFF)  # data chunk sizes of WAVs written while recording


async def iter_upload(
    read: Callable[[int], Awaitable[bytes]], block_size: int = 64 * 1024
) -> AsyncIterator[bytes]:
    """The blocks of an upload read with ``read`` (e.g. Starlette's ``UploadFile.read``)."""
    while data := await read(block_size):
        yield data


class _Source:
    """The upload's bytes with a byte count checked against the size limit."""

    def __init__(self, source: AsyncIterable[bytes], limits: UploadLimits) -> None:
        self._iter = aiter(source)
        self.limits = limits
        self.received = 0

    async def next(self) -> bytes | None:
        try:
            data = await anext(self._iter)
        except StopAsyncIteration:
            return None
        self.received += len(data)
        check_size(self.received, self.limits)
        return data


def _wav_samples(header: WavHeader) -> Callable[[bytes], np.ndarray[Any, Any]] | None:
    """A decoder of whole frames to float32 (interleaved), or ``None`` for libsndfile."""
    tag, bits = header.format_tag, header.bits_per_sample
    if tag == 1 and bits == 8:
        return lambda b: (np.frombuffer(b, np.uint8).astype(np.float32) - 128.0) / 128.0
    if tag == 1 and bits == 16:
        return lambda b: np.frombuffer(b, "<i2").astype(np.float32) / 32768.0
    if tag == 1 and bits == 24:

        def int24(b: bytes) -> np.ndarray[Any, Any]:
            raw = np.frombuffer(b, np.uint8).reshape(-1, 3).astype(np.int32)
            value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
            return (np.where(value >= 1 << 23, value - (1 << 24), value) / 8388608.0).astype(
                np.float32
            )

        return int24
    if tag == 1 and bits == 32:
        return lambda b: (np.frombuffer(b, "<i4") / 2147483648.0).astype(np.float32)
    if tag == 3 and bits in (32, 64):
        dtype = "<f4" if bits == 32 else "<f8"
        return lambda b: np.nan_to_num(np.frombuffer(b, dtype)).astype(np.float32)
    return None


class _ToPcm16:
    """Interleaved float32 at any rate to 16 kHz mono PCM16, counting the samples out."""

    def __init__(self, sample_rate: int, channels: int, limits: UploadLimits) -> None:
        self.channels = channels
        self.resampler = StreamResampler(sample_rate, TARGET_SAMPLE_RATE)
        self.limits = limits
        self.samples = 0

    def convert(self, samples: np.ndarray[Any, Any], *, last: bool = False) -> bytes:
        mono = samples.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        return self.count(float32_to_pcm16(self.resampler.process(mono, last=last)))

    def count(self, pcm: bytes) -> bytes:
        self.samples += len(pcm) // 2
        check_duration(self.samples / TARGET_SAMPLE_RATE, self.limits)
        return pcm


async def _decode_wav(
    source: _Source, buffer: bytearray, header: WavHeader
) -> AsyncIterator[bytes]:
    decode = _wav_samples(header)
    assert decode is not None
    frame = header.channels * (header.bits_per_sample // 8)
    (declared,) = struct.unpack_from("<I", buffer, header.data_offset - 4)
    remaining: int | None = None if declared in _UNSIZED else declared
    passthrough = (
        header.format_tag == 1
        and header.bits_per_sample == 16
        and header.channels == 1
        and header.sample_rate == TARGET_SAMPLE_RATE
    )
    out = _ToPcm16(header.sample_rate, header.channels, source.limits)
    pending = bytearray(buffer[header.data_offset :])
    while True:
        if remaining is not None:
            del pending[remaining:]  # chunks after the data chunk are not audio
        usable = len(pending) - len(pending) % frame
        if usable:
            block = bytes(pending[:usable])
            del pending[:usable]
            if remaining is not None:
                remaining -= usable
            pcm = out.count(block) if passthrough else out.convert(decode(block))
            if pcm:
                yield pcm
        if remaining == 0:
            break
        data = await source.next()
        if data is None:
            break
        pending += data
    if remaining:
        raise NotAudioError(
            f"the WAV file is truncated: its header announces {declared} bytes of audio, "
            f"{declared - remaining} arrived",
            param="file",
        )
    if not passthrough:
        tail = out.convert(np.zeros(0, np.float32), last=True)
        if tail:
            yield tail


def _open(spool: IO[bytes]) -> sf.SoundFile:
    spool.seek(0)
    try:
        return sf.SoundFile(spool)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise NotAudioError(f"the file cannot be decoded as audio: {exc}", param="file") from exc


def _read(file: sf.SoundFile, frames: int) -> np.ndarray[Any, Any]:
    try:
        return np.asarray(file.read(frames, dtype="float32", always_2d=True))
    except (sf.LibsndfileError, RuntimeError) as exc:
        raise NotAudioError(f"the file is corrupt: {exc}", param="file") from exc


async def _decode_spooled(
    source: _Source, buffer: bytearray, spool_bytes: int
) -> AsyncIterator[bytes]:
    with tempfile.SpooledTemporaryFile(max_size=spool_bytes) as spool:
        spool.write(buffer)
        del buffer[:]
        while (data := await source.next()) is not None:
            spool.write(data)
        file = await asyncio.to_thread(_open, spool)
        with contextlib.closing(file):
            if 0 < file.frames < 1 << 40:  # libsndfile's count; absent for some streams
                check_duration(file.frames / file.samplerate, source.limits)
            out = _ToPcm16(file.samplerate, file.channels, source.limits)
            while True:
                block = await asyncio.to_thread(_read, file, file.samplerate * _BLOCK_SECONDS)
                last = len(block) == 0
                pcm = out.convert(block, last=last)
                if pcm:
                    yield pcm
                if last:
                    break


async def decode_pcm16(
    source: AsyncIterable[bytes],
    limits: UploadLimits | None = None,
    *,
    spool_bytes: int = 1 << 20,
) -> AsyncIterator[bytes]:
    """Decode an upload to 16 kHz mono PCM16 as its bytes arrive.

    Args:
        source: The file's bytes in blocks of any size (:func:`iter_upload`).
        limits: Size and duration limits; defaults to :class:`~.upload.UploadLimits`.
        spool_bytes: Bytes of a compressed upload kept in memory before spooling to disk.

    Yields:
        PCM16 blocks of any length (whole samples).

    Raises:
        NotAudioError: Not audio, or a truncated or corrupt file (400).
        UnsupportedMediaTypeError: MP4/M4A, WebM and other containers not decoded (415).
        UploadTooLargeError: More bytes than ``limits.max_bytes`` (413).
        AudioTooLongError: Longer than ``limits.max_seconds`` (400).
    """
    src = _Source(source, limits or UploadLimits())
    buffer = bytearray()
    while len(buffer) < SNIFF_BYTES and (data := await src.next()) is not None:
        buffer += data
    if not buffer:
        raise NotAudioError("the file is empty", param="file")
    container = sniff(bytes(buffer[:SNIFF_BYTES]))
    header: WavHeader | None = None
    if container is Container.WAV and buffer[:4] == b"RIFF":
        while True:
            try:
                header = parse_wav_header(bytes(buffer))
            except AudioFormatError as exc:
                raise NotAudioError(f"the WAV file is malformed: {exc}", param="file") from exc
            if header is not None or len(buffer) > _MAX_WAV_HEADER:
                break
            data = await src.next()
            if data is None:
                break
            buffer += data
        if header is None:
            raise NotAudioError("the WAV file is truncated inside its header", param="file")
    info = probe(bytes(buffer[: max(SNIFF_BYTES, header.data_offset if header else 0)]))
    if info.duration is not None:
        check_duration(info.duration, src.limits)
    if header is not None and _wav_samples(header) is not None:
        async for pcm in _decode_wav(src, buffer, header):
            yield pcm
    else:
        async for pcm in _decode_spooled(src, buffer, spool_bytes):
            yield pcm
