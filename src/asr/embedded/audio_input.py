"""Client audio bytes to 16 kHz mono float32: WAV sniffing, G.711, channel mixing, resampling.

:class:`StreamAudioDecoder` is incremental (sans-I/O): bytes of any chunking in, samples
out. When the encoding or sample rate is unset, or the first bytes are a RIFF header (as
the official Riva client's ``AudioChunkFileIterator`` sends, header inside the first
chunk), the header is parsed, its format used and its bytes dropped. A header split over
several chunks is buffered until complete. FLAC and Ogg Opus (``encoding`` FLAC or
OGGOPUS, or unset and the bytes start with ``fLaC`` or ``OggS``, sniffed as Riva does)
go to :mod:`.flac` and :mod:`.ogg_opus`, which decode each frame or packet as it
completes. :func:`decode_audio_file` handles a whole upload (offline ``Recognize``),
including FLAC and Ogg via libsndfile.
"""

from __future__ import annotations

import io

import numpy as np
import numpy.typing as npt
import soundfile as sf

from ..audio import (
    TARGET_SAMPLE_RATE,
    StreamResampler,
    parse_wav_header,
    pcm16_to_float32,
    resample,
)
from ..errors import AudioFormatError
from .compressed import CompressedStream
from .flac import FlacStream
from .ogg_opus import OggOpusStream

__all__ = [
    "StreamAudioDecoder",
    "alaw_to_float32",
    "decode_audio_file",
    "mulaw_to_float32",
]

Float32Array = npt.NDArray[np.float32]

_MAX_HEADER_BYTES = 1 << 20  # a WAV header (with LIST/INFO chunks) never needs more


def _mulaw_table() -> Float32Array:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    exponent = (u >> 4) & 7
    magnitude = ((((u & 0x0F) << 3) + 0x84) << exponent) - 0x84
    return (np.where(u & 0x80, -magnitude, magnitude) / 32768.0).astype(np.float32)


def _alaw_table() -> Float32Array:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a >> 4) & 7
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0)
    )
    return (np.where(a & 0x80, magnitude, -magnitude) / 32768.0).astype(np.float32)


_MULAW = _mulaw_table()
_ALAW = _alaw_table()


def mulaw_to_float32(data: bytes) -> Float32Array:
    """Decode G.711 mu-law bytes (ITU-T G.711) to float32 samples."""
    return _MULAW[np.frombuffer(data, np.uint8)]


def alaw_to_float32(data: bytes) -> Float32Array:
    """Decode G.711 A-law bytes (ITU-T G.711) to float32 samples."""
    return _ALAW[np.frombuffer(data, np.uint8)]


# WAV format tags (RFC 2361) to the encodings this module decodes, by bits per sample.
_WAV_FORMATS = {(1, 16): "LINEAR_PCM", (7, 8): "MULAW", (6, 8): "ALAW", (3, 32): "FLOAT"}
_BYTES_PER_SAMPLE = {"LINEAR_PCM": 2, "MULAW": 1, "ALAW": 1, "FLOAT": 4}
# Containers that carry their own format, by encoding and by the magic bytes they start with.
_COMPRESSED: dict[str, type[CompressedStream]] = {"FLAC": FlacStream, "OGGOPUS": OggOpusStream}
_COMPRESSED_MAGIC = {b"fLaC": "FLAC", b"OggS": "OGGOPUS"}


class StreamAudioDecoder:
    """Incremental decoder of one stream's audio bytes.

    Args:
        encoding: ``"LINEAR_PCM"``, ``"MULAW"``, ``"ALAW"``, ``"FLAC"``, ``"OGGOPUS"`` or
            ``None`` (unset: sniff a WAV header or FLAC/Ogg magic, else assume LINEAR_PCM).
        sample_rate: Rate of the raw audio sent; ``None`` requires a WAV header. FLAC and
            Ogg Opus carry their own, as they carry their channel count.
        channels: Interleaved channels; ``None`` means 1 or the header's count.
    """

    def __init__(
        self, *, encoding: str | None, sample_rate: int | None, channels: int | None
    ) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self.channels = channels or 1
        self._buffer = b""
        self._sniffing = True
        self._resampler: StreamResampler | None = None
        self._compressed: CompressedStream | None = None

    def feed(self, data: bytes) -> Float32Array:
        """Decode the next bytes; returns 16 kHz mono samples (possibly none).

        Raises:
            AudioFormatError: The audio cannot be decoded.
        """
        if self._compressed is not None:
            return self._compressed.feed(data)
        self._buffer += data
        if self._sniffing and not self._sniff(final=False):
            return np.zeros(0, np.float32)
        if self._compressed is not None:
            return self._compressed.feed(self._take_buffer())
        return self._decode(final=False)

    def finish(self) -> Float32Array:
        """The stream ended: decode what is left and flush the resampler.

        Raises:
            AudioFormatError: A partial sample, header, FLAC frame or Ogg page is left
                over, or the sample rate was never known.
        """
        if self._sniffing:
            self._sniff(final=True)
        if self._compressed is not None:
            head = self._compressed.feed(self._take_buffer())
            return np.concatenate([head, self._compressed.finish()])
        return self._decode(final=True)

    def _take_buffer(self) -> bytes:
        data, self._buffer = self._buffer, b""
        return data

    def _sniff(self, *, final: bool) -> bool:
        """Decide whether the stream starts with a header; False while undecided."""
        buf = self._buffer
        if len(buf) < 12 and not final and b"RIFF".startswith(buf[:4]):
            return False
        if self.encoding is None and not final and len(buf) < 4:
            if any(magic.startswith(buf) for magic in _COMPRESSED_MAGIC):
                return False
        if self.encoding in _COMPRESSED or (self.encoding is None and buf[:4] in _COMPRESSED_MAGIC):
            self.encoding = self.encoding or _COMPRESSED_MAGIC[buf[:4]]
            self._compressed = _COMPRESSED[self.encoding]()
        elif buf[:4] == b"RIFF" and buf[8:12] == b"WAVE":
            header = parse_wav_header(buf)
            if header is None:
                if final or len(buf) > _MAX_HEADER_BYTES:
                    raise AudioFormatError(
                        "the WAV header at the start of the audio is truncated: no data chunk found"
                    )
                return False
            fmt = _WAV_FORMATS.get((header.format_tag, header.bits_per_sample))
            if fmt is None:
                raise AudioFormatError(
                    f"unsupported WAV format: tag {header.format_tag}, "
                    f"{header.bits_per_sample} bits; send 16-bit PCM, mu-law or A-law"
                )
            self.encoding = fmt
            self.sample_rate = header.sample_rate
            self.channels = header.channels
            self._buffer = buf[header.data_offset :]
        elif self.sample_rate is None:
            raise AudioFormatError(
                "sample_rate_hertz is not set and the audio does not start with a WAV "
                "header: set RecognitionConfig.sample_rate_hertz"
            )
        self.encoding = self.encoding or "LINEAR_PCM"
        self._sniffing = False
        return True

    def _decode(self, *, final: bool) -> Float32Array:
        assert self.encoding is not None and self.sample_rate is not None
        width = _BYTES_PER_SAMPLE[self.encoding]
        frame = width * self.channels
        usable = len(self._buffer) - len(self._buffer) % frame
        if final and usable != len(self._buffer):
            what = (
                "an odd number of PCM16 bytes"
                if width == 2 and self.channels == 1
                else (
                    f"{len(self._buffer) % frame} bytes left over, not a whole "
                    f"{frame}-byte frame of {self.channels} channel(s)"
                )
            )
            raise AudioFormatError(f"the audio ended with {what}")
        data, self._buffer = self._buffer[:usable], self._buffer[usable:]
        if self.encoding == "LINEAR_PCM":
            samples = pcm16_to_float32(data, self.channels)
        else:
            if self.encoding == "MULAW":
                raw = mulaw_to_float32(data)
            elif self.encoding == "ALAW":
                raw = alaw_to_float32(data)
            else:
                raw = np.frombuffer(data, "<f4").astype(np.float32)
            samples = raw.reshape(-1, self.channels).mean(axis=1, dtype=np.float32)
        if self._resampler is None:
            self._resampler = StreamResampler(self.sample_rate)
        return self._resampler.process(samples, last=final)


_FILE_MAGIC = (b"RIFF", b"fLaC", b"OggS", b"FORM")


def decode_audio_file(
    data: bytes, *, encoding: str | None, sample_rate: int | None, channels: int | None
) -> Float32Array:
    """Decode a whole upload to 16 kHz mono float32.

    Files (WAV, FLAC, Ogg, AIFF: recognised by their magic bytes, or any bytes when
    ``encoding`` is FLAC or OGGOPUS) are read with libsndfile; raw LINEAR_PCM, MULAW and
    ALAW use ``encoding``, ``sample_rate`` and ``channels``.

    Raises:
        AudioFormatError: The audio cannot be decoded.
    """
    if data[:4] in _FILE_MAGIC or encoding in ("FLAC", "OGGOPUS"):
        try:
            samples, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
            if data[:4] != b"RIFF":
                raise AudioFormatError(
                    f"cannot decode the {encoding or 'audio'} file: {exc}"
                ) from exc
        else:
            mono = np.ascontiguousarray(samples.mean(axis=1, dtype=np.float32))
            return resample(mono, int(rate), TARGET_SAMPLE_RATE)
    # Raw samples, or a WAV that libsndfile refused (e.g. a streaming header whose sizes
    # are 0xFFFFFFFF): the incremental decoder handles both.
    decoder = StreamAudioDecoder(encoding=encoding, sample_rate=sample_rate, channels=channels)
    head = decoder.feed(data)
    return np.concatenate([head, decoder.finish()])
