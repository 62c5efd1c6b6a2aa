"""Transcript assembly of the own contract: Riva's results to VAD and transcript messages.

Riva streams no VAD state; an utterance starts with its first result (``vad.speech_start``)
and ends with its final (``vad.speech_end`` then ``transcript.final``). Times are moved
from each gRPC stream's clock onto the session's by the stream's ``offset``. Pure: the
messages' envelopes (``session_id``, ``seq``) come from the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asr.contract import TranscriptFinal, TranscriptPartial, VadSpeechEnd, VadSpeechStart
from asr.events import Final, Partial, Word

from .actions import Action, Send

__all__ = ["Utterances"]


class Utterances:
    """The utterance in progress and the finals' texts of one session.

    Args:
        envelope: The next message's ``session_id`` and ``seq``.
    """

    def __init__(self, envelope: Callable[[], dict[str, Any]]) -> None:
        self._envelope = envelope
        self.in_speech = False
        self.start = 0.0
        """Start of the utterance in progress, in seconds of session audio."""
        self.texts: list[str] = []
        """The text of every non-empty final, in order."""

    def partial(self, event: Partial, offset: float) -> list[Action]:
        """The messages of a partial of a stream that began ``offset`` seconds in."""
        processed = round(offset + event.audio_processed, 3)
        actions: list[Action] = []
        if not self.in_speech:
            self.in_speech = True
            actions.append(Send(VadSpeechStart(**self._envelope(), time=processed)))
        partial = TranscriptPartial(
            **(event.model_dump(exclude={"type"}) | {"audio_processed": processed}),
            **self._envelope(),
            start=self.start,
            end=max(processed, self.start),
        )
        actions.append(Send(partial))
        return actions

    def final(self, event: Final, offset: float, forced: bool) -> list[Action]:
        """The messages of a final; ``forced``: cut by ``finalize`` or ``end``."""
        if not event.text and not self.in_speech:
            return []  # an empty final for silence: nothing was announced, nothing to close
        shift = round(offset * 1000)
        words = tuple(
            Word(
                word=w.word,
                start_ms=w.start_ms + shift,
                end_ms=w.end_ms + shift,
                confidence=w.confidence,
            )
            for w in event.words
        )
        processed = round(offset + event.audio_processed, 3)
        start = words[0].start_ms / 1000 if words else self.start
        end = words[-1].end_ms / 1000 if words else max(processed, start)
        actions: list[Action] = []
        if not self.in_speech:
            actions.append(Send(VadSpeechStart(**self._envelope(), time=start)))
        actions.append(Send(VadSpeechEnd(**self._envelope(), time=end)))
        final = TranscriptFinal(
            **(
                event.model_dump(exclude={"type", "words"})
                | {"audio_processed": processed, "words": words}
            ),
            **self._envelope(),
            start=start,
            end=end,
            is_speech_final=not forced,
        )
        actions.append(Send(final))
        self.in_speech = False
        self.start = end
        if event.text:
            self.texts.append(event.text)
        return actions
