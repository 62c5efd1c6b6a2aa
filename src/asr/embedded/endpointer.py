"""Endpoint detection over per-frame speech probabilities, with Riva's semantics.

A pure state machine: :meth:`Endpointer.push` takes one VAD frame probability and returns
the events it caused. Frame indices are the clock; nothing here reads time or audio.

Riva ``EndpointingConfig`` (``riva/proto/riva_asr.proto``) semantics:

* an utterance **starts** when the fraction of speech frames in the last
  ``start_history`` ms reaches ``start_threshold``;
* it **ends** when the fraction of non-speech frames in the last ``stop_history`` ms
  reaches ``stop_threshold``;
* ``stop_history_eou`` / ``stop_threshold_eou`` is the same test over a shorter window: a
  first-pass end of utterance. Here it starts the final's decode speculatively (event
  :class:`EndOfUtterance`); if speech resumes before the real end the speculation is
  withdrawn (:class:`SpeechResumed`).

A frame counts as speech when its probability is at least ``threshold`` while waiting
for speech, and at least ``neg_threshold`` once inside an utterance: the hysteresis Silero
VAD's own ``get_speech_timestamps`` uses, so a word's soft tail does not end it.

Defaults (used for every field that is 0 or unset in the request), chosen on read speech
(LibriSpeech, LJSpeech, LibriVox) with Silero VAD v6 and 32 ms frames:

=====================  =======  ==========================================================
``start_history``      200 ms   ~6 frames: a click or a breath does not start an utterance
``start_threshold``    0.5      half of them speech
``stop_history``       500 ms   sentence pauses in read speech split utterances; commas
                                mostly do not. Final ~0.5 s after the last word.
``stop_threshold``     0.9      a single noisy frame does not keep an utterance open
``stop_history_eou``   250 ms   speculative final decode starts a quarter second after
                                the last word, so it is usually ready at the real end
``stop_threshold_eou`` 1.0      every frame of that window non-speech
=====================  =======  ==========================================================

One extension, used only when a request leaves ``stop_history`` unset: while an utterance
has less than ``short_utterance_ms`` (4 s) of speech, its stop window is
``short_stop_history`` (1.5 s) instead. Whisper transcribes a short phrase cut off from
the rest of its sentence badly (tiny.en hears JFK's "And so, my fellow Americans", followed
by a one-second pause, as "And so am I fellow Americans"), and a short phrase followed by a
pause is more often a sentence fragment than a whole turn. Longer utterances still end
0.5 s after their last word.

Riva's own defaults (CTC-blank based, 80 ms frames) are larger because its acoustic frames
are coarser; Silero's probabilities fall within one or two frames of a word's end.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

__all__ = [
    "EndOfUtterance",
    "EndpointEvent",
    "EndpointParams",
    "Endpointer",
    "SpeechEnded",
    "SpeechResumed",
    "SpeechStarted",
]


@dataclass(frozen=True, slots=True)
class EndpointParams:
    """Endpointing parameters in milliseconds and fractions; see the module docstring."""

    start_history: int = 200
    start_threshold: float = 0.5
    stop_history: int = 500
    stop_threshold: float = 0.9
    stop_history_eou: int = 250
    stop_threshold_eou: float = 1.0
    threshold: float = 0.5
    """Probability at or above which a frame starts speech."""
    neg_threshold: float = 0.35
    """Probability below which a frame inside an utterance is non-speech."""
    frame_ms: int = 32
    short_stop_history: int = 1500
    """Stop window while the utterance is shorter than ``short_utterance_ms``; 0: off."""
    short_utterance_ms: int = 4000

    def merged(self, **overrides: float | int | None) -> EndpointParams:
        """These parameters with every override that is neither ``None`` nor 0 applied.

        Riva treats 0 as "use the default" (proto3 scalars have no presence).
        """
        values = {k: v for k, v in overrides.items() if v}
        return EndpointParams(**{**_fields(self), **values})  # type: ignore[arg-type]

    def frames(self, ms: int) -> int:
        """Window length in frames for ``ms`` milliseconds (at least one)."""
        return max(1, math.ceil(ms / self.frame_ms))


def _fields(params: EndpointParams) -> dict[str, float | int]:
    return {name: getattr(params, name) for name in EndpointParams.__dataclass_fields__}


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """An utterance began; ``frame`` is its first speech frame within the start window."""

    frame: int


@dataclass(frozen=True, slots=True)
class EndOfUtterance:
    """First-pass end: speech ended at ``end_frame`` (exclusive); decode speculatively."""

    end_frame: int


@dataclass(frozen=True, slots=True)
class SpeechResumed:
    """Speech came back after an :class:`EndOfUtterance`; discard the speculation."""

    frame: int


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    """The utterance ended; ``end_frame`` (exclusive) follows its last speech frame."""

    end_frame: int


EndpointEvent = SpeechStarted | EndOfUtterance | SpeechResumed | SpeechEnded


class Endpointer:
    """Turns a stream of frame probabilities into utterance start and end events.

    Args:
        params: Endpointing parameters; :class:`EndpointParams` defaults when ``None``.
    """

    def __init__(self, params: EndpointParams | None = None) -> None:
        self.params = p = params or EndpointParams()
        self._start_n = p.frames(p.start_history)
        self._stop_n = p.frames(p.stop_history)
        # An eou window as long as the stop window would fire together with the end, so
        # it is only meaningful when shorter.
        eou_n = p.frames(p.stop_history_eou)
        self._eou_n = eou_n if eou_n < self._stop_n else 0
        self._short_stop_n = p.frames(p.short_stop_history) if p.short_stop_history else 0
        self._short_n = p.frames(p.short_utterance_ms) if self._short_stop_n else 0
        self._window: deque[bool] = deque(
            maxlen=max(self._start_n, self._stop_n, self._short_stop_n)
        )
        self._start_frame = 0
        self.frame = 0
        """Frames pushed so far."""
        self.in_speech = False
        self.last_speech_end = 0
        """One past the last speech frame of the current or last utterance."""
        self._eou_pending = False

    def push(self, prob: float) -> list[EndpointEvent]:
        """Add one frame's speech probability; return the events it caused, in order."""
        p = self.params
        index = self.frame
        self.frame += 1
        events: list[EndpointEvent] = []
        if not self.in_speech:
            self._window.append(prob >= p.threshold)
            recent = list(self._window)[-self._start_n :]
            # Missing frames at the stream start count as non-speech.
            if sum(recent) / self._start_n >= p.start_threshold:
                first = index - len(recent) + 1 + recent.index(True)
                self._begin(first)
                self.last_speech_end = index + 1
                events.append(SpeechStarted(first))
            return events
        speech = prob >= p.neg_threshold
        self._window.append(speech)
        if speech:
            self.last_speech_end = index + 1
            if self._eou_pending:
                self._eou_pending = False
                events.append(SpeechResumed(index))
        window = list(self._window)
        if self._eou_n and not self._eou_pending:
            tail = window[-self._eou_n :]
            silent = (len(tail) - sum(tail)) / self._eou_n
            if silent >= p.stop_threshold_eou:
                # Once per pause: it stays pending until speech resumes or the end comes.
                self._eou_pending = True
                events.append(EndOfUtterance(self.last_speech_end))
        stop_n = self._stop_n
        if self._short_n and self.last_speech_end - self._start_frame < self._short_n:
            stop_n = max(stop_n, self._short_stop_n)
        tail = window[-stop_n:]
        if (len(tail) - sum(tail)) / stop_n >= p.stop_threshold:
            self.in_speech = False
            self._eou_pending = False
            self._window.clear()
            events.append(SpeechEnded(self.last_speech_end))
        return events

    def restart(self) -> None:
        """Treat the current frame as the start of a new utterance that is already in speech.

        Used when an utterance is cut because it grew too long for the engine.
        """
        if self.in_speech:
            self._begin(self.frame)

    def _begin(self, start_frame: int) -> None:
        self.in_speech = True
        self._start_frame = start_frame
        self._eou_pending = False
        self._window.clear()
        # Within an utterance the stop window starts out full of speech, so an utterance
        # lasts at least until the stop test can see a real pause.
        self._window.extend([True] * (self._window.maxlen or 0))
