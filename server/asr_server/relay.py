"""One session's audio to Riva over gRPC, one stream per utterance segment.

Riva has no "force endpoint" request, so ``finalize`` ends the current
``StreamingRecognize`` call (its audio iterator finishes and Riva flushes the utterance
as a final) and the next audio opens a new call. Results carry the offset of their call in
session audio, so times stay relative to the session start. Calls run one after another:
every result of a call is delivered before any result of the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import Enum

from asr.client import RivaASRClient
from asr.events import Final, Partial
from asr.options import RecognitionOptions

__all__ = ["RelayEvent", "RivaRelay", "StreamEnded", "StreamStarted"]

_BYTES_PER_SECOND = 16_000 * 2  # 16 kHz mono PCM16, what the relay is fed


class _Mark(Enum):
    FINISH = "finish"
    END = "end"


@dataclass(frozen=True, slots=True)
class RelayEvent:
    """A Riva result and where its gRPC call sits in the session.

    Attributes:
        event: The result; its times count from the start of its call.
        offset: Seconds of session audio sent before its call began.
        forced: The call's audio had been ended by ``finalize``/``end`` before the result.
    """

    event: Partial | Final
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
        forced: Its audio had been ended by ``finish_utterance``/``end``.
    """

    index: int | None
    forced: bool


class RivaRelay:
    """Feeds 16 kHz PCM16 audio to Riva and yields its results in order.

    Args:
        client: The shared Riva client (one channel and breaker for the server).
        options: Recognition options for every call of this session.
    """

    def __init__(self, client: RivaASRClient, options: RecognitionOptions) -> None:
        self._client = client
        self._options = options
        self._queue: asyncio.Queue[bytes | _Mark] = asyncio.Queue()
        self._sent_bytes = 0
        self._calls = 0

    def feed(self, pcm16: bytes) -> None:
        """Queue audio for the current call (a new call opens if none is running)."""
        if pcm16:
            self._queue.put_nowait(pcm16)

    def finish_utterance(self) -> None:
        """End the current call after the audio queued so far."""
        self._queue.put_nowait(_Mark.FINISH)

    def end(self) -> None:
        """No more audio: :meth:`events` ends after the last call's results."""
        self._queue.put_nowait(_Mark.END)

    async def events(self) -> AsyncIterator[RelayEvent | StreamStarted | StreamEnded]:
        """Results of every call, in order, until :meth:`end`, each call's between its
        :class:`StreamStarted` and :class:`StreamEnded`.

        Raises:
            asr.errors.ASRError: A call failed (after the client's own retries).
        """
        while True:
            item = await self._queue.get()
            if item is _Mark.END:
                return
            if item is _Mark.FINISH:
                yield StreamEnded(None, forced=True)  # nothing in flight to finish
                continue
            offset = self._sent_bytes / _BYTES_PER_SECOND
            index, self._calls = self._calls, self._calls + 1
            call = _Call(self, item)
            yield StreamStarted(index)
            async for event in self._client.stream(call.audio(), self._options):
                yield RelayEvent(event, offset, forced=call.closed)
            yield StreamEnded(index, forced=call.closed)
            if call.ended:
                return


class _Call:
    """The audio of one gRPC call: from ``first`` up to the next mark in the queue."""

    def __init__(self, relay: RivaRelay, first: bytes) -> None:
        self._relay = relay
        self._first = first
        self.closed = False
        self.ended = False

    async def audio(self) -> AsyncIterator[bytes]:
        relay = self._relay
        chunk = self._first
        while True:
            yield chunk
            relay._sent_bytes += len(chunk)
            item = await relay._queue.get()
            if isinstance(item, _Mark):
                self.closed = True
                self.ended = item is _Mark.END
                return
            chunk = item
