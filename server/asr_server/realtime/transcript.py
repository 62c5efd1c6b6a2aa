"""Riva results to the realtime API's transcript events: one item per utterance.

Item ``n`` is the session's ``n``-th utterance: its partials become ``...delta`` events
(the whole interim text, repeated hypotheses left out) and its final the one
``...completed``; then item ``n + 1`` begins. Riva's stream is in order, so every event
of item ``n`` comes before any of item ``n + 1``.

After ``input_audio_buffer.done`` the client waits for a completed with
``is_last_result`` true, and only the end of Riva's call tells which final was the last,
so each completed is held until the next result or the end (:meth:`Transcript.last`).
When the call ends with no final after ``done`` (the last utterance had ended at an
endpoint before), the last completed is sent again, same item and text, now with
``is_last_result``: NVIDIA's client keeps the last completed's transcript as the result
it saves, and a client that keys transcripts by item sees the same item set twice to
the same text. With no utterance at all it is an empty completed for a new item.
"""

from __future__ import annotations

from collections.abc import Callable

from asr.events import Final, Partial

from .events import TranscriptionCompleted, TranscriptionDelta, WordInfo, WordsInfo

__all__ = ["Transcript"]

_Event = TranscriptionDelta | TranscriptionCompleted


class Transcript:
    """One session's utterances.

    Args:
        tag: The session's id without ``sess_``, in every item id.
        next_id: Gives the ``event_id`` of each event, as it is sent.
    """

    def __init__(self, tag: str, next_id: Callable[[], str]) -> None:
        self._tag = tag
        self._next_id = next_id
        self.index = 0
        """The item of the utterance in progress."""
        self.finals: list[str] = []
        self._delta = ""
        self._last: TranscriptionCompleted | None = None
        self._held: TranscriptionCompleted | None = None

    def item_id(self, index: int) -> str:
        """The id of item ``index`` (``item_<tag>_<index>``)."""
        return f"item_{self._tag}_{index}"

    @property
    def previous_item_id(self) -> str | None:
        """The last completed item, ``None`` before the first."""
        return self.item_id(self.index - 1) if self.index else None

    def partial(self, event: Partial) -> list[_Event]:
        """A Riva partial: a delta unless it repeats the last one."""
        if event.text == self._delta:
            return []  # Riva repeats a hypothesis as it grows more stable
        self._delta = event.text
        return self._emit(
            TranscriptionDelta(event_id="", item_id=self.item_id(self.index), delta=event.text)
        )

    def final(self, event: Final, offset: float, *, hold: bool) -> list[_Event]:
        """A Riva final: the item's completed (held when ``hold``: after ``done``).

        Args:
            event: The final; word times relative to its gRPC call.
            offset: Seconds of session audio before that call.
            hold: Keep the completed until the next result or :meth:`last`.
        """
        if not event.text and not self._delta:
            return []  # an empty final for silence: no item was begun, none is completed
        shift = round(offset * 1000)
        words = tuple(
            WordInfo(
                word=w.word,
                start_time=w.start_ms + shift,
                end_time=w.end_ms + shift,
                confidence=w.confidence or 0.0,
            )
            for w in event.words
        )
        completed = TranscriptionCompleted(
            event_id="",
            item_id=self.item_id(self.index),
            transcript=event.text,
            words_info=WordsInfo(words=words),
        )
        self.index += 1
        self._delta = ""
        if event.text:
            self.finals.append(event.text)
        self._last = completed
        if hold:
            out = self._flush()
            self._held = completed
            return out
        return self._emit(completed)

    def last(self) -> TranscriptionCompleted:
        """The session's last completed, with ``is_last_result`` true."""
        last = self._held or self._last
        self._held = None
        if last is None:
            last = TranscriptionCompleted(
                event_id="", item_id=self.item_id(self.index), transcript=""
            )
        return last.model_copy(update={"event_id": self._next_id(), "is_last_result": True})

    def _emit(self, event: _Event) -> list[_Event]:
        return [*self._flush(), event.model_copy(update={"event_id": self._next_id()})]

    def _flush(self) -> list[_Event]:
        held, self._held = self._held, None
        if held is None:
            return []
        return [held.model_copy(update={"event_id": self._next_id()})]
