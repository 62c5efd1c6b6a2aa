"""What the tests of the transcription route's pure parts share (asr_server.transcriptions):
a scripted recogniser in Riva's place, finals timed without a model, and uploads encoded
from the JFK clip at test time.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from asr.events import Final, Word
from asr.options import RecognitionOptions

from .helpers import JFK_TEXT

__all__ = ["JFK_TEXT", "JfkClip", "encoded", "read_jfk", "scripted_recognize", "timed_final"]

JfkClip = tuple[np.ndarray[Any, Any], int, bytes]
"""The JFK clip's float32 samples, its sample rate and the WAV file's bytes."""


def read_jfk(speech_dir: Path) -> JfkClip:
    """The JFK clip, decoded and as its file, for a module's ``jfk`` fixture."""
    path = speech_dir / "jfk" / "jfk.wav"
    samples, rate = sf.read(path, dtype="float32")
    return samples, rate, path.read_bytes()


def timed_final(text: str, start: float, end: float) -> Final:
    """A final whose words are spread evenly over [start, end] seconds."""
    tokens = text.split()
    step = (end - start) / len(tokens)
    words = tuple(
        Word(
            word=t,
            start_ms=round((start + i * step) * 1000),
            end_ms=round((start + (i + 0.8) * step) * 1000),
        )
        for i, t in enumerate(tokens)
    )
    return Final(text=text, words=words, audio_processed=end)


async def scripted_recognize(pcm: bytes, options: RecognitionOptions) -> list[Final]:
    """Riva's part: the JFK sentence timed over any piece longer than a second."""
    seconds = len(pcm) / 32000
    return [timed_final(JFK_TEXT, 0.3, seconds - 0.5)] if seconds > 1 else []


def encoded(
    samples: np.ndarray[Any, Any], rate: int, fmt: str, subtype: str | None = None
) -> bytes:
    """``samples`` as a file of libsndfile's format ``fmt`` (and ``subtype``)."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()
