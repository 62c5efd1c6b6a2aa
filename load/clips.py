"""The clips the load tool streams: a speech set's clips with their audio loaded as PCM16.

The folder of speech sets comes from the command line or ``ASR_SPEECH_FIXTURES``
(:func:`asr.evaluation.corpus.speech_fixtures`); there is no built-in default.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.audio import PCM16_BYTES_PER_SECOND, float32_to_pcm16
from asr.evaluation.corpus import Clip, load_corpus, speech_fixtures

__all__ = ["DEFAULT_SET", "PcmClip", "load_clips", "speech_set"]

DEFAULT_SET = "librispeech_mini"


@dataclass(frozen=True, slots=True)
class PcmClip:
    """A corpus clip and its audio as 16 kHz PCM16 mono, read once up front so that the
    sessions stream from memory."""

    clip: Clip
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / PCM16_BYTES_PER_SECOND


def speech_set(clips: Path | None, speech: Path | None = None) -> Path:
    """The speech set to stream: ``clips`` if given, else :data:`DEFAULT_SET` in the folder
    of speech sets (``speech``, else ``$ASR_SPEECH_FIXTURES``).

    Raises:
        FileNotFoundError: Neither ``clips``, ``speech`` nor the environment names a folder.
    """
    if clips is not None:
        return clips
    return speech_fixtures(speech) / DEFAULT_SET


def load_clips(folder: Path, max_seconds: float | None = None) -> list[PcmClip]:
    """The set's clips no longer than ``max_seconds``, in the order of ``refs.jsonl``.

    Raises:
        FileNotFoundError: No ``refs.jsonl`` in ``folder``.
        ValueError: No clip is short enough.
    """
    clips = []
    for clip in load_corpus(folder):
        loaded = PcmClip(clip, float32_to_pcm16(clip.samples()))
        if max_seconds is None or loaded.seconds <= max_seconds:
            clips.append(loaded)
    if not clips:
        raise ValueError(f"no clip in {folder} is at most {max_seconds} s long")
    return clips
