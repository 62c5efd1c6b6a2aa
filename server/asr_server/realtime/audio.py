"""The input audio buffer of a realtime session: appended audio held until commit.

``input_audio_buffer.append`` adds audio here (checked at once, so a bad chunk is refused
by itself); ``commit`` takes it out as 16 kHz PCM16 for Riva, with the forced ends of
utterance (``runtime_config.force_eou``) in their places; ``clear`` drops it. Decoding
happens at commit, so the streaming resampler only ever sees audio that goes to Riva.

Two formats: ``pcm16`` (raw little-endian PCM16 mono at the session's rate) and ``none``,
the bytes of a WAV file as NVIDIA's client reads them from disk (``AudioChunkFileIterator``
sends the file from its first byte, RIFF header included, and says ``none``); the header
gives the rate and must describe PCM16 mono.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Literal

from asr.audio import parse_wav_header
from asr.errors import AudioFormatError

from ..decoding import AudioDecoder
from ..protocol import FinishUtterance, ForwardAudio

__all__ = ["BufferFullError", "InputAudio"]

_MAX_HEADER_BYTES = 64 * 1024
"""A WAV header (with LIST/INFO chunks before ``data``) longer than this is refused."""
_UNSIZED = (0, 0xFFFFFFFF)
"""``data`` chunk sizes that streaming writers put when the length is not known."""


class BufferFullError(Exception):
    """Appending would hold more uncommitted audio than the buffer takes."""


@dataclass(slots=True)
class _Chunk:
    pcm: bytes
    """PCM16 at the client's rate."""
    cut_after: bool


@dataclass(frozen=True, slots=True)
class _Wav:
    """Where a WAV file's bytes are: in the header, or in the samples."""

    header: bytes = b""
    """The header's bytes so far, while its ``data`` chunk has not begun."""
    decoder: AudioDecoder | None = None
    """Set once the header is read."""
    data_left: int | None = None
    """Bytes of the ``data`` chunk still to come; ``None`` when unsized."""
    odd: bytes = b""
    """The first byte of a sample split across two appends."""


class InputAudio:
    """One session's appended audio.

    Args:
        audio_format: ``pcm16`` or ``none`` (a WAV file's bytes).
        sample_rate: Rate of ``pcm16`` audio in Hz.
        max_buffer_seconds: Uncommitted audio held at most.
    """

    def __init__(
        self,
        audio_format: Literal["pcm16", "none"],
        sample_rate: int,
        *,
        max_buffer_seconds: float,
    ) -> None:
        self.audio_format = audio_format
        self.max_buffer_seconds = max_buffer_seconds
        self._wav = _Wav(
            decoder=AudioDecoder("pcm16", sample_rate) if audio_format == "pcm16" else None
        )
        self._chunks: list[_Chunk] = []
        self._buffered = 0

    @property
    def sample_rate(self) -> int | None:
        """Rate of the audio, ``None`` while a WAV header is awaited."""
        decoder = self._wav.decoder
        return decoder.sample_rate if decoder else None

    @property
    def buffered_seconds(self) -> float:
        """Audio appended and not yet committed."""
        return _seconds(self._buffered, self.sample_rate)

    def append(self, data: bytes, *, force_eou: bool = False) -> float:
        """Add a chunk; returns its seconds of audio (0 for a header alone).

        Raises:
            asr.errors.AudioFormatError: The chunk is not PCM16 samples (odd byte count),
                or the WAV header is not PCM16 mono. Nothing is added.
            BufferFullError: The buffer cannot take the chunk. Nothing is added.
        """
        if self.audio_format == "pcm16":
            if len(data) % 2:
                raise AudioFormatError(
                    f"pcm16 audio must be whole 2-byte samples, got {len(data)} bytes"
                )
            pcm, wav = data, self._wav
        else:
            pcm, wav = _wav_samples(self._wav, data)
        rate = wav.decoder.sample_rate if wav.decoder else None
        if _seconds(self._buffered + len(pcm), rate) > self.max_buffer_seconds:
            raise BufferFullError(
                f"the uncommitted audio would exceed {self.max_buffer_seconds:g} s; "
                "send input_audio_buffer.commit more often"
            )
        self._wav = wav
        if pcm or force_eou:
            self._chunks.append(_Chunk(pcm, force_eou))
            self._buffered += len(pcm)
        return _seconds(len(pcm), rate)

    def take(self, *, final: bool = False) -> list[ForwardAudio | FinishUtterance]:
        """The buffered audio as 16 kHz PCM16 with its cuts, and an empty buffer.

        Args:
            final: No audio follows: the resampler's tail is included.
        """
        out: list[ForwardAudio | FinishUtterance] = []
        decoder = self._wav.decoder
        for chunk in self._chunks:
            if decoder is not None:  # None: only cuts, no audio, before a WAV header
                _extend(out, decoder.decode(chunk.pcm))
                _extend(out, decoder.flush() if chunk.cut_after else b"")
            if chunk.cut_after:
                out.append(FinishUtterance())
        if final and decoder is not None:
            _extend(out, decoder.flush())
        self._chunks.clear()
        self._buffered = 0
        return out

    def clear(self) -> float:
        """Drop the uncommitted audio (and its cuts); returns its seconds."""
        dropped = self.buffered_seconds
        self._chunks.clear()
        self._buffered = 0
        return dropped


def _seconds(nbytes: int, rate: int | None) -> float:
    return nbytes / (2 * rate) if rate else 0.0


def _wav_samples(wav: _Wav, data: bytes) -> tuple[bytes, _Wav]:
    """The samples in the next bytes of a WAV file, and where the file is after them.

    Raises:
        asr.errors.AudioFormatError: The header is malformed, too long, or not PCM16 mono.
    """
    decoder, left = wav.decoder, wav.data_left
    if decoder is None:
        head = wav.header + data
        header = parse_wav_header(head)  # raises on a malformed header
        if header is None:
            if len(head) >= 12 and (head[:4] != b"RIFF" or head[8:12] != b"WAVE"):
                raise AudioFormatError(
                    "input_audio_format 'none' takes a WAV file (RIFF/WAVE, PCM16 mono); "
                    "for raw samples use 'pcm16'"
                )
            if len(head) > _MAX_HEADER_BYTES:
                raise AudioFormatError(
                    f"the WAV header is longer than {_MAX_HEADER_BYTES} bytes before its data"
                )
            return b"", _Wav(header=head)
        if header.format_tag != 1 or header.bits_per_sample != 16 or header.channels != 1:
            raise AudioFormatError(
                f"the WAV file holds {header.channels}-channel {header.bits_per_sample}-bit "
                f"audio of format {header.format_tag}; send PCM16 mono (format 1)"
            )
        if not 8_000 <= header.sample_rate <= 192_000:
            raise AudioFormatError(
                f"the WAV file's rate of {header.sample_rate} Hz is outside 8000-192000 Hz"
            )
        (size,) = struct.unpack_from("<I", head, header.data_offset - 4)
        left = None if size in _UNSIZED else size
        decoder = AudioDecoder("pcm16", header.sample_rate)
        data = head[header.data_offset :]
    if left is not None:
        data = data[:left]  # chunks after the samples (LIST, id3) are not audio
        left -= len(data)
    data = wav.odd + data
    whole = len(data) - len(data) % 2
    return data[:whole], _Wav(decoder=decoder, data_left=left, odd=data[whole:])


def _extend(out: list[ForwardAudio | FinishUtterance], pcm: bytes) -> None:
    if not pcm:
        return
    if out and isinstance(out[-1], ForwardAudio):
        out[-1] = ForwardAudio(out[-1].pcm16 + pcm)
    else:
        out.append(ForwardAudio(pcm))
