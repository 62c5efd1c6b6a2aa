"""Typed recognition results: :class:`Partial` while speech goes on, :class:`Final` at
each endpoint.

They are distinct frozen models so that code handling a final can never be handed a
partial by mistake; the WebSocket JSON contract is generated from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Alternative", "Final", "Partial", "Progress", "TranscriptEvent", "Word"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Word(_Frozen):
    """One recognised word with its place in the stream's audio (Riva ``WordInfo``).

    Times are milliseconds from the start of the stream's audio.
    """

    word: str
    start_ms: int
    end_ms: int
    confidence: float | None = None


class Alternative(_Frozen):
    """One hypothesis for an utterance (Riva ``SpeechRecognitionAlternative``)."""

    text: str
    confidence: float | None = None
    words: tuple[Word, ...] = ()


class Partial(_Frozen):
    """An interim hypothesis for the utterance in progress; a later one replaces it.

    Attributes:
        text: The hypothesis so far.
        stability: How likely the text is to stay as it is, from 0 (will change) to 1.
        audio_processed: Seconds of the stream's audio the server had processed.
        channel: Audio channel the result belongs to.
    """

    type: Literal["partial"] = "partial"
    text: str
    stability: float = Field(default=0.0, ge=0.0, le=1.0)
    audio_processed: float = 0.0
    channel: int = 0


class Final(_Frozen):
    """The settled transcript of one utterance, emitted at its endpoint.

    Attributes:
        text: Transcript of the best alternative.
        confidence: Confidence of the best alternative, if the server gave one.
        words: Word timings of the best alternative, when word time offsets were asked.
        alternatives: All alternatives, best first (the first repeats ``text``).
        audio_processed: Seconds of the stream's audio the server had processed.
        channel: Audio channel the result belongs to.
    """

    type: Literal["final"] = "final"
    text: str
    confidence: float | None = None
    words: tuple[Word, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    audio_processed: float = 0.0
    channel: int = 0

    @property
    def start_ms(self) -> int | None:
        """Start of the first word, when word times were returned."""
        return self.words[0].start_ms if self.words else None

    @property
    def end_ms(self) -> int | None:
        """End of the last word, when word times were returned."""
        return self.words[-1].end_ms if self.words else None


class Progress(_Frozen):
    """A response that carries no transcript: the server is working and has processed
    ``audio_processed`` seconds of the stream (``RivaASRClient.stream(progress=True)``).

    Attributes:
        audio_processed: Seconds of the stream's audio the server had processed.
    """

    type: Literal["progress"] = "progress"
    audio_processed: float = 0.0


TranscriptEvent = Annotated[Partial | Final, Field(discriminator="type")]
"""Either result type, discriminated by ``type``."""
