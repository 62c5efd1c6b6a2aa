"""Audio helpers: read files, convert sample formats, resample, split and pace.

Everything here is a pure function over bytes or NumPy arrays, except :func:`read_audio`
(reads a file) and :func:`paced` (sleeps). Audio inside this package is mono float32 in
[-1, 1] or little-endian PCM16 bytes.
"""

from __future__ import annotations

import asyncio
import errno
import struct
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt
import soundfile as sf
import soxr

from .errors import AudioFormatError

__all__ = [
    "PCM16_BYTES_PER_SECOND",
    "StreamResampler",
    "TARGET_SAMPLE_RATE",
    "WavHeader",
    "aiter_any",
    "chunk_bytes",
    "float32_bytes_to_array",
    "float32_to_pcm16",
    "load_pcm16",
    "paced",
    "parse_wav_header",
    "pcm16_to_float32",
    "read_audio",
    "resample",
]

TARGET_SAMPLE_RATE = 16_000
"""The rate Riva ASR models (and Whisper) work at."""

PCM16_BYTES_PER_SECOND = TARGET_SAMPLE_RATE * 2
"""Bytes of one second of mono PCM16 at :data:`TARGET_SAMPLE_RATE`."""

Float32Array = npt.NDArray[np.float32]
T = TypeVar("T")


def read_audio(path: str | PathLike[str]) -> tuple[Float32Array, int]:
    """Read a WAV, FLAC or other libsndfile-readable file as mono float32.

    Returns:
        The samples, channels averaged to mono, and the file's sample rate.

    Raises:
        FileNotFoundError: There is no such file.
        AudioFormatError: The file cannot be read as audio.
    """
    if not Path(path).is_file():
        # libsndfile says "System error." for a missing file; say what is wrong.
        raise FileNotFoundError(errno.ENOENT, "no such file", str(path))
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise AudioFormatError(
            f"cannot read {path} as audio (WAV, FLAC, Ogg, MP3 or another format "
            f"libsndfile reads): {exc}"
        ) from exc
    return np.ascontiguousarray(data.mean(axis=1, dtype=np.float32)), int(rate)


def load_pcm16(path: str | PathLike[str], sample_rate: int = TARGET_SAMPLE_RATE) -> bytes:
    """Read an audio file and return mono PCM16 bytes at ``sample_rate``."""
    samples, rate = read_audio(path)
    return float32_to_pcm16(resample(samples, rate, sample_rate))


def pcm16_to_float32(data: bytes, channels: int = 1) -> Float32Array:
    """Decode little-endian PCM16 to mono float32, averaging interleaved channels.

    Raises:
        AudioFormatError: The byte count is not a whole number of frames.
    """
    frame = 2 * channels
    if len(data) % frame:
        raise AudioFormatError(
            f"PCM16 audio must be a whole number of {frame}-byte frames, got {len(data)} bytes"
        )
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
    return samples


def float32_bytes_to_array(data: bytes) -> Float32Array:
    """Decode little-endian float32 samples, refusing NaN and infinities.

    Raises:
        AudioFormatError: Not a whole number of samples, or non-finite values.
    """
    if len(data) % 4:
        raise AudioFormatError(f"float32 audio must be a multiple of 4 bytes, got {len(data)}")
    samples = np.frombuffer(data, dtype="<f4").astype(np.float32)
    if not np.isfinite(samples).all():
        raise AudioFormatError("float32 audio contains NaN or infinite samples")
    return samples


def float32_to_pcm16(samples: npt.NDArray[np.floating]) -> bytes:
    """Encode float samples in [-1, 1] as PCM16 bytes, clipping out-of-range values."""
    clipped = np.clip(np.nan_to_num(samples), -1.0, 1.0)
    return bytes((clipped * 32767.0).round().astype("<i2").tobytes())


def resample(
    samples: Float32Array, from_rate: int, to_rate: int = TARGET_SAMPLE_RATE
) -> Float32Array:
    """Resample mono float32 audio with libsoxr (high quality)."""
    if from_rate == to_rate or samples.size == 0:
        return samples
    if from_rate <= 0 or to_rate <= 0:
        raise AudioFormatError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
    return np.asarray(soxr.resample(samples, from_rate, to_rate, quality="HQ"), dtype=np.float32)


class StreamResampler:
    """Resamples a stream chunk by chunk with one libsoxr state, so chunk boundaries do not
    click as resampling each chunk alone would.

    Args:
        from_rate: The stream's sample rate.
        to_rate: The rate wanted.
    """

    def __init__(self, from_rate: int, to_rate: int = TARGET_SAMPLE_RATE) -> None:
        if from_rate <= 0 or to_rate <= 0:
            raise AudioFormatError(f"sample rates must be positive, got {from_rate} -> {to_rate}")
        self.from_rate, self.to_rate = from_rate, to_rate
        self._stream: soxr.ResampleStream | None = None

    def process(self, samples: Float32Array, *, last: bool = False) -> Float32Array:
        """The resampled audio ready so far (``last``: and the tail, ending the stream)."""
        if self.from_rate == self.to_rate:
            return samples
        if self._stream is None:
            self._stream = soxr.ResampleStream(
                self.from_rate, self.to_rate, 1, dtype="float32", quality="HQ"
            )
        out = self._stream.resample_chunk(samples, last=last)
        if last:
            self._stream = None  # the next audio starts a new stream
        return np.asarray(out, np.float32).reshape(-1)

    def flush(self) -> Float32Array:
        """The tail held back for the filter; the next audio starts a new stream."""
        if self._stream is None:
            return np.zeros(0, np.float32)
        return self.process(np.zeros(0, np.float32), last=True)


def chunk_bytes(
    data: bytes, chunk_ms: int = 100, sample_rate: int = TARGET_SAMPLE_RATE, frame_bytes: int = 2
) -> Iterator[bytes]:
    """Split audio bytes into chunks of ``chunk_ms`` milliseconds (the last may be shorter)."""
    size = max(frame_bytes, sample_rate * chunk_ms // 1000 * frame_bytes)
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def paced(
    chunks: Iterable[bytes] | AsyncIterable[bytes],
    bytes_per_second: float,
) -> AsyncIterator[bytes]:
    """Yield chunks no faster than real time, as a microphone would deliver them.

    Pacing is against a monotonic clock from the first chunk, so scheduling jitter does
    not accumulate.
    """
    start = time.monotonic()
    sent = 0
    async for chunk in aiter_any(chunks):
        due = start + sent / bytes_per_second
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        yield chunk
        sent += len(chunk)


async def aiter_any(source: AsyncIterable[T] | Iterable[T]) -> AsyncIterator[T]:
    """Iterate a sync or an async iterable asynchronously."""
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


@dataclass(frozen=True, slots=True)
class WavHeader:
    """The parts of a RIFF/WAVE header needed to decode its samples."""

    sample_rate: int
    channels: int
    bits_per_sample: int
    format_tag: int
    """1 = integer PCM, 3 = IEEE float, 6 = A-law, 7 = mu-law."""
    data_offset: int
    """Byte offset of the first sample."""


_WAVE_FORMAT_EXTENSIBLE = 0xFFFE


def parse_wav_header(data: bytes) -> WavHeader | None:
    """Parse a RIFF/WAVE header at the start of ``data``.

    Returns ``None`` when ``data`` does not start with a RIFF/WAVE header, or when the
    header is not complete within ``data`` (up to the start of the ``data`` chunk).

    Raises:
        AudioFormatError: A RIFF/WAVE header that is malformed.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    fmt: tuple[int, int, int, int] | None = None
    while pos + 8 <= len(data):
        chunk_id = data[pos : pos + 4]
        (size,) = struct.unpack_from("<I", data, pos + 4)
        body = pos + 8
        if chunk_id == b"fmt ":
            if size < 16:
                raise AudioFormatError("WAV header has a truncated fmt chunk")
            if body + min(size, 40) > len(data):
                return None  # the rest of the header is in bytes not yet received
            tag, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
            if tag == _WAVE_FORMAT_EXTENSIBLE and size >= 26:
                (tag,) = struct.unpack_from("<H", data, body + 24)
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            if fmt is None:
                raise AudioFormatError("WAV header has a data chunk before its fmt chunk")
            tag, channels, rate, bits = fmt
            if channels < 1 or rate < 1:
                raise AudioFormatError(f"WAV header is invalid: {channels} channels at {rate} Hz")
            return WavHeader(rate, channels, bits, tag, body)
        pos = body + size + (size & 1)  # RIFF chunks are padded to even sizes
    return None
