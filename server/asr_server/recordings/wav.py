"""PCM16 WAV files written as audio arrives: the header, and its repair after a crash.

Why WAV and not FLAC: an appended PCM file is readable up to its last byte whatever
happened to the writer, and a crash costs only the two size fields of the 44-byte RIFF
header (``RIFF`` size at offset 4, ``data`` size at offset 40), which the file's length
gives back. A FLAC stream cut by SIGKILL lacks its STREAMINFO totals and libsndfile's
buffered last frame; the gateway sends Riva 16 kHz PCM16 anyway.

Pure byte layout plus two small blocking file operations; callers run those in a thread.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

__all__ = ["HEADER_BYTES", "WavFormatError", "repair_wav", "wav_header"]

HEADER_BYTES = 44
"""Size of the canonical header: RIFF, ``fmt `` (16 bytes) and ``data`` chunk heads."""

_SAMPLE_BYTES = 2


class WavFormatError(ValueError):
    """The file is not a canonical PCM16 WAV as :func:`wav_header` writes."""


def wav_header(sample_rate: int, data_bytes: int = 0, channels: int = 1) -> bytes:
    """The 44-byte header of a PCM16 WAV holding ``data_bytes`` of samples."""
    block = channels * _SAMPLE_BYTES
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", 36 + data_bytes),
            b"WAVEfmt ",
            struct.pack("<IHHIIHH", 16, 1, channels, sample_rate, sample_rate * block, block, 16),
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def repair_wav(path: Path) -> int:
    """Set the header's sizes from the file's length; blocking (run it in a thread).

    A torn last sample (an odd byte count) is cut off. The file is fsync'd.

    Returns:
        The bytes of audio data the file holds.

    Raises:
        WavFormatError: The file does not start with the header :func:`wav_header` writes.
    """
    with open(path, "r+b") as file:
        head = file.read(HEADER_BYTES)
        if len(head) < HEADER_BYTES or head[:4] != b"RIFF" or head[8:16] != b"WAVEfmt ":
            raise WavFormatError(f"{path} is not a PCM16 WAV written by the recorder")
        if head[36:40] != b"data":
            raise WavFormatError(f"{path} has no data chunk where the recorder puts it")
        channels = int(struct.unpack_from("<H", head, 22)[0])
        size = os.fstat(file.fileno()).st_size
        block = channels * _SAMPLE_BYTES
        data = (size - HEADER_BYTES) // block * block
        if HEADER_BYTES + data != size:
            file.truncate(HEADER_BYTES + data)
        file.seek(4)
        file.write(struct.pack("<I", 36 + data))
        file.seek(40)
        file.write(struct.pack("<I", data))
        file.flush()
        os.fsync(file.fileno())
    return data
