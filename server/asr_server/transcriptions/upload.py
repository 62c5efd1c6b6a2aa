"""Checks on an uploaded file, pure over its first bytes and its size so far.

What reaches Riva: the gateway decodes every upload itself to 16 kHz mono PCM16 and sends
``LINEAR_PCM`` (:mod:`.decode`), so that a long file can be cut into pieces Riva's
``Recognize`` takes (:mod:`.chunking`) and every Riva deployment gets the one encoding all
of them accept. Riva's offline ``Recognize`` itself takes LINEAR_PCM (WAV), FLAC and
OGGOPUS (NIM: "WAV, OPUS, FLAC").

=================  ======================================================================
container          here
=================  ======================================================================
WAV (RIFF/RF64)    decoded: integer PCM and float as the bytes arrive, G.711 and others
                   with libsndfile
FLAC               decoded with libsndfile (``soundfile``, a core dependency)
Ogg                decoded with libsndfile: Opus (Riva's OGGOPUS) and Vorbis
MP3                decoded with libsndfile (1.1 and later read MPEG audio; the pinned
                   ``soundfile`` wheel ships 1.2); OpenAI accepts mp3/mpga/mpeg, so its
                   clients often send it
MP4/M4A, WebM,     415, naming the accepted formats: decoding them needs FFmpeg (PyAV),
AAC, AIFF, CAF     which only the embedded server's extra installs, not the gateway's
anything else      400: not audio
=================  ======================================================================
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from asr.audio import parse_wav_header
from asr.errors import AudioFormatError

from .errors import AudioTooLongError, NotAudioError, UnsupportedMediaTypeError, UploadTooLargeError

__all__ = [
    "ACCEPTED_FORMATS",
    "AudioInfo",
    "Container",
    "SNIFF_BYTES",
    "UploadLimits",
    "check_duration",
    "check_size",
    "probe",
    "sniff",
]

ACCEPTED_FORMATS = "WAV, FLAC, Ogg (Opus or Vorbis) or MP3"
"""The formats named in refusals."""

SNIFF_BYTES = 64
"""Bytes :func:`sniff` needs to tell every container apart (Ogg's codec id is at 28-36)."""


class Container(StrEnum):
    """The containers decoded here."""

    WAV = "wav"
    FLAC = "flac"
    OGG = "ogg"
    MP3 = "mp3"


class UploadLimits(BaseModel):
    """What one upload may hold.

    Attributes:
        max_bytes: Largest upload; OpenAI's limit is 25 MB.
        max_seconds: Longest recording.
        chunk_seconds: Longest piece of audio sent in one Riva ``Recognize`` call.
        cut_search_seconds: How far back from a piece's end the quietest point to cut at
            is looked for.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_bytes: int = Field(default=25 * 1024 * 1024, ge=1)
    max_seconds: float = Field(default=3600.0, gt=0)
    chunk_seconds: float = Field(default=30.0, ge=1.0, le=600.0)
    cut_search_seconds: float = Field(default=5.0, ge=0.0)


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """What a file's header says; ``None`` where it does not say."""

    container: Container
    sample_rate: int | None = None
    channels: int | None = None
    duration: float | None = None
    """Seconds, from the header alone (WAV sizes, FLAC's STREAMINFO sample count)."""


def _refused(kind: str) -> UnsupportedMediaTypeError:
    return UnsupportedMediaTypeError(
        f"{kind} audio is not supported; send {ACCEPTED_FORMATS}", param="file"
    )


def sniff(head: bytes) -> Container:
    """The container of a file from its first :data:`SNIFF_BYTES` bytes (fewer if it is
    shorter), by magic number, never by file name or declared content type.

    Raises:
        UnsupportedMediaTypeError: Audio in a container not decoded here (415).
        NotAudioError: Not audio (400).
    """
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return Container.WAV
    if head[:4] == b"fLaC":
        return Container.FLAC
    if head[:4] == b"OggS":
        if head[28:36] == b"OpusHead" or head[28:35] == b"\x01vorbis":
            return Container.OGG
        raise _refused("Ogg holding neither Opus nor Vorbis")
    if head[:3] == b"ID3":
        return Container.MP3  # an ID3v2 tag leads MP3 files; other formats rarely have one
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        # MPEG audio frame sync; layer bits 00 are ADTS, i.e. AAC (ISO 13818-7).
        if (head[1] >> 1) & 3:
            return Container.MP3
        raise _refused("AAC (ADTS)")
    if head[4:8] == b"ftyp":
        raise _refused("MP4/M4A")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        raise _refused("WebM/Matroska")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        raise _refused("AIFF")
    if head[:4] == b"caff":
        raise _refused("CAF")
    raise NotAudioError(f"the file is not audio; send {ACCEPTED_FORMATS}", param="file")


def check_size(received: int, limits: UploadLimits) -> None:
    """Refuse an upload once ``received`` bytes exceed the limit.

    Raises:
        UploadTooLargeError: 413.
    """
    if received > limits.max_bytes:
        raise UploadTooLargeError(
            f"the file is larger than the {limits.max_bytes} bytes accepted", param="file"
        )


def check_duration(seconds: float, limits: UploadLimits) -> None:
    """Refuse a recording longer than the limit.

    Raises:
        AudioTooLongError: 400.
    """
    if seconds > limits.max_seconds:
        raise AudioTooLongError(
            f"the recording is {seconds:.1f} s long; at most {limits.max_seconds:g} s are accepted",
            param="file",
        )


def _wav(head: bytes, total_size: int | None) -> AudioInfo:
    try:
        header = parse_wav_header(head)
    except AudioFormatError as exc:
        raise NotAudioError(f"the WAV file is malformed: {exc}", param="file") from exc
    if header is None:
        return AudioInfo(Container.WAV)
    (declared,) = struct.unpack_from("<I", head, header.data_offset - 4)
    if declared in (0, 0xFFFFFFFF) and total_size is not None:
        # Written while recording: the size was never filled in (RF64 keeps it elsewhere).
        declared = total_size - header.data_offset
    frame = header.channels * max(1, header.bits_per_sample // 8)
    duration = declared / frame / header.sample_rate if declared not in (0, 0xFFFFFFFF) else None
    return AudioInfo(Container.WAV, header.sample_rate, header.channels, duration)


def _flac(head: bytes) -> AudioInfo:
    # STREAMINFO is the first metadata block (RFC 9639 section 8.2): after the marker and
    # a 4-byte block header, 10 bytes of block/frame sizes, then 20 bits of sample rate,
    # 3 of channels - 1, 5 of bits per sample - 1 and 36 of the total sample count.
    if len(head) < 26 or head[4] & 0x7F != 0:
        return AudioInfo(Container.FLAC)
    (packed,) = struct.unpack_from(">Q", head, 18)
    rate = packed >> 44
    channels = ((packed >> 41) & 7) + 1
    samples = packed & 0xFFFFFFFFF
    if rate == 0:
        raise NotAudioError("the FLAC file is malformed: sample rate 0", param="file")
    return AudioInfo(Container.FLAC, rate, channels, samples / rate if samples else None)


def probe(head: bytes, total_size: int | None = None) -> AudioInfo:
    """What the first bytes of a file (up to a few kB) say of its format and length.

    Args:
        head: The file's first bytes; a WAV header with large metadata chunks may need
            more than 4 kB, after which the duration is simply not known yet.
        total_size: The file's size, if known, for WAVs written without their size.

    Raises:
        UnsupportedMediaTypeError, NotAudioError: As :func:`sniff`, or a malformed header.
    """
    container = sniff(head[:SNIFF_BYTES])
    if container is Container.WAV and head[:4] == b"RIFF":
        return _wav(head, total_size)
    if container is Container.FLAC:
        return _flac(head)
    return AudioInfo(container)
