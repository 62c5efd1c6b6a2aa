"""What the recogniser hands out: decode jobs to run and results to send.

Plain frozen data, shared by :mod:`.recognizer` (which makes them), :mod:`.requests`
(which turns results into Riva responses) and the servicer (which runs the jobs).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import numpy as np
import numpy.typing as npt

from .engine import Transcription

__all__ = ["DecodeJob", "FinalResult", "InterimResult", "JobKind", "Result", "Step"]

Float32Array = npt.NDArray[np.float32]


class JobKind(Enum):
    """What a decode is for; the value is its scheduling priority (lower runs first)."""

    FINAL = 0
    SPECULATIVE = 1
    PARTIAL = 2


@dataclass(frozen=True, slots=True, eq=False)
class DecodeJob:
    """One utterance's audio to decode.

    Attributes:
        job_id: Unique within the stream, increasing.
        utterance: The utterance it belongs to (1, 2, ...).
        kind: Final, speculative final (started at a first-pass end of utterance) or partial.
        audio: 16 kHz mono float32 samples ``[start_sample, end_sample)`` of the stream.
        start_sample: Stream-absolute offset of ``audio[0]``.
        end_sample: Stream-absolute offset one past the last sample.
        speech_sample: Stream-absolute offset of the utterance's first speech frame (its
            audio starts earlier, by the pre-roll): no word starts before it.
    """

    job_id: int
    utterance: int
    kind: JobKind
    audio: Float32Array
    start_sample: int
    end_sample: int
    speech_sample: int = 0


@dataclass(frozen=True, slots=True)
class InterimResult:
    """A partial hypothesis for the utterance in progress.

    Attributes:
        utterance: Which utterance.
        text: The engine's text for the audio so far.
        stability: Share of its words that agree with the previous partial, in [0, 1].
        audio_processed: Seconds of stream audio received when it was produced.
    """

    utterance: int
    text: str
    stability: float
    audio_processed: float


@dataclass(frozen=True, slots=True)
class FinalResult:
    """The settled transcript of one utterance.

    Attributes:
        utterance: Which utterance.
        transcription: The engine's output, word times made stream-absolute (seconds).
        start: Stream time (seconds) where the decoded audio began.
        end: Stream time (seconds) where it ended.
        audio_processed: Seconds of stream audio received when it was produced.
    """

    utterance: int
    transcription: Transcription
    start: float
    end: float
    audio_processed: float


Result = InterimResult | FinalResult


@dataclass(frozen=True, slots=True)
class Step:
    """What one call produced: decode jobs to run and results ready to send."""

    jobs: list[DecodeJob]
    results: list[Result]
