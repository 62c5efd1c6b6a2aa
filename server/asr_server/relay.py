"""One session's audio to Riva over one gRPC ``StreamingRecognize`` call.

``finalize`` does not end the call: the relay puts Riva's own forced end of utterance in
its place in the audio (a request with ``runtime_config`` ``{"force_eou": "true"}``, Riva
2.27, sent by the client for an :class:`asr.EndOfUtterance`), and the same call goes on
with the next audio. Riva finalises the utterance after the audio before the marker and
keeps every later sample for the next one, so nothing is lost at the seam. (Before, Riva
having no such request in older versions, ``finalize`` ended the call and the next audio
opened a new one.) ``end`` ends the call's audio; the call finishes after the last final.

All times therefore count from the session start: the ``offset`` of every result is 0.
The client is asked for :class:`asr.events.Progress` too (responses without transcript),
which the session's stall detector counts as signs of life.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum

from asr.backend import SpeechBackend
from asr.events import Final, Partial, Progress
from asr.markers import AudioItem, EndOfUtterance
from asr.options import RecognitionOptions

__all__ = ["BYTES_PER_SECOND", "RelayEvent", "RivaRelay", "StreamEnded", "StreamStarted"]

BYTES_PER_SECOND = 16_000 * 2
"""16 kHz mono PCM16, what the relay is fed."""

_CUT_TOLERANCE = 0.01
"""Seconds within which a final's ``audio_processed`` names a forced cut: Riva reports a
forced final at the cut (``audio_processed`` is a float32 on the wire)."""


class _Mark(Enum):
    FINISH = "finish"
    END = "end"


@dataclass(frozen=True, slots=True)
class RelayEvent:
    """A Riva result and where its gRPC call sits in the session.

    Attributes:
        event: The result (or a response without transcript); times count from the
            start of its call.
        offset: Seconds of session audio sent before its call began (0: one call).
        forced: A final that ends an utterance cut by ``finalize``, or any result after
            ``end``.
    """

    event: Partial | Final | Progress
    offset: float
    forced: bool


@dataclass(frozen=True, slots=True)
class StreamStarted:
    """A gRPC call to Riva opened.

    Attributes:
        index: 0 for the session's first call, then one more per call.
    """

    index: int


@dataclass(frozen=True, slots=True)
class StreamEnded:
    """A gRPC call to Riva finished and every result of it was delivered.

    Attributes:
        index: The call's index; ``None`` for a ``finalize`` that found no call open
            (nothing to wait for).
        forced: Its audio had been ended by :meth:`RivaRelay.end`.
    """

    index: int | None
    forced: bool


class RivaRelay:
    """Feeds 16 kHz PCM16 audio to Riva and yields its results in order.

    Args:
        client: The server's shared backend client (Riva's: one channel and breaker; or
            Dynamo's, which speaks the same Riva messages to its workers).
        options: Recognition options for the session's call.
    """

    def __init__(self, client: SpeechBackend, options: RecognitionOptions) -> None:
        self._client = client
        self._options = options
        self._queue: asyncio.Queue[bytes | _Mark] = asyncio.Queue()
        self._sent_bytes = 0
        self._cuts: deque[float] = deque()
        self._ended = False

    def feed(self, pcm16: bytes) -> None:
        """Queue audio for the call (it opens with the first audio)."""
        if pcm16:
            self._queue.put_nowait(pcm16)

    def finish_utterance(self) -> None:
        """Force an end of utterance after the audio queued so far; the call goes on."""
        self._queue.put_nowait(_Mark.FINISH)

    def end(self) -> None:
        """No more audio: :meth:`events` ends after the call's last results."""
        self._queue.put_nowait(_Mark.END)

    async def events(self) -> AsyncIterator[RelayEvent | StreamStarted | StreamEnded]:
        """The call's results, in order, between :class:`StreamStarted` and
        :class:`StreamEnded`, until :meth:`end`.

        Raises:
            asr.errors.ASRError: The call failed (after the client's own retries).
        """
        first = await self._queue.get()
        while isinstance(first, _Mark):  # no audio yet: nothing to open a call for
            if first is _Mark.END:
                return
            yield StreamEnded(None, forced=True)
            first = await self._queue.get()
        yield StreamStarted(0)
        stream = self._client.stream(self._audio(first), self._options, progress=True)
        async for event in stream:
            forced = self._ended or (
                isinstance(event, Final) and self._is_cut(event.audio_processed)
            )
            yield RelayEvent(event, 0.0, forced=forced)
        yield StreamEnded(0, forced=self._ended)

    async def _audio(self, first: bytes) -> AsyncIterator[AudioItem]:
        item: bytes | _Mark = first
        while True:
            if item is _Mark.END:
                self._ended = True
                return
            if item is _Mark.FINISH:
                self._cuts.append(self._sent_bytes / BYTES_PER_SECOND)
                yield EndOfUtterance()
            else:
                assert isinstance(item, bytes)
                self._sent_bytes += len(item)
                yield item
            item = await self._queue.get()

    def _is_cut(self, audio_processed: float) -> bool:
        """Whether a final reports a forced cut (and forget that cut and the earlier ones,
        which found no speech)."""
        if not any(abs(audio_processed - cut) <= _CUT_TOLERANCE for cut in self._cuts):
            return False
        while self._cuts and self._cuts[0] <= audio_processed + _CUT_TOLERANCE:
            self._cuts.popleft()
        return True
