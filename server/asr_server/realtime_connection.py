"""One connection of NVIDIA's realtime API: frames to
:class:`~asr_server.realtime.RealtimeSession` to Riva and back.

The realtime counterpart of :class:`asr_server.contract_connection.ContractConnection`:
both are :class:`~asr_server.streaming_connection.StreamingConnection`\\ s (the same
:class:`~asr_server.connection.Channel`, :class:`~asr_server.relay.RivaRelay` and
recording). What differs is the session it drives, its events' metrics, the completed
transcript as what the recording keeps, and one rule of reading: NVIDIA's client sends a
file as fast as it reads it, so while the session is :attr:`~RealtimeSession.backlogged`
(Riva has not caught up with the audio sent to it) the frames read are not acknowledged
to the channel, whose reader stops after ``read_ahead`` of them; TCP then slows the
client down. Fast audio is held back rather than refused.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from asr.events import Final, Word
from asr.logs import ContextAdapter

from .connection import AsgiTransport
from .realtime import RealtimeErrorCode, RealtimeSession, Send
from .realtime.events import TranscriptionCompleted, TranscriptionDelta
from .state import Gateway
from .streaming_connection import StreamingConnection

__all__ = ["INTERFACE", "READ_AHEAD", "RealtimeConnection"]

INTERFACE = "realtime"
"""The ``interface`` label of this API in the gateway's metrics."""

READ_AHEAD = 16
"""Client frames read before they are processed: what the session may take beyond its
backlog bound before reading stops (8 append/commit pairs of NVIDIA's client)."""


class RealtimeConnection(StreamingConnection[RealtimeSession]):
    """Runs one realtime session.

    Args:
        transport: The accepted WebSocket.
        session: The session's protocol state.
        gw: The gateway's shared parts.
        log: The logger with the session id attached.
    """

    def __init__(
        self,
        transport: AsgiTransport,
        session: RealtimeSession,
        gw: Gateway,
        log: ContextAdapter,
    ) -> None:
        super().__init__(transport, session, gw, log, interface=INTERFACE, read_ahead=READ_AHEAD)
        self._held = 0
        """Client frames processed but not acknowledged to the channel (backlog)."""
        self._partial_seen = False
        self._last_completed: str | None = None
        """The item of the last completed observed (metrics)."""
        self._last_recorded: str | None = None
        """The item of the last completed kept in the recording."""

    async def _frame_done(self, frame: bool) -> None:
        """Let the reader go on for the frames held, unless Riva is still behind."""
        if frame:
            self._held += 1
        if self.session.backlogged:
            return
        while self._held:
            self._held -= 1
            await self._channel.processed()

    def _audio_position(self) -> float:
        # Riva's positions count the audio forwarded (cleared audio left out).
        return self.session.forwarded_seconds

    def _outgoing(self, action: object) -> BaseModel | None:
        return action.event if isinstance(action, Send) else None

    def _final(self, message: BaseModel) -> Final | None:
        """A completed with text, once per item (the last is sent again with
        ``is_last_result``); word times are already on the session's clock."""
        if not isinstance(message, TranscriptionCompleted) or not message.transcript:
            return None
        if message.item_id == self._last_recorded:
            return None
        self._last_recorded = message.item_id
        words = tuple(
            Word(word=w.word, start_ms=w.start_time, end_ms=w.end_time, confidence=w.confidence)
            for w in message.words_info.words
        )
        return Final(
            text=message.transcript,
            words=words,
            audio_processed=self.session.processed_seconds,
        )

    def _internal_error(self) -> Sequence[object]:
        return self.session.refuse(RealtimeErrorCode.INTERNAL_ERROR, "internal server error")

    def _client_too_slow(self, limit: int) -> Sequence[object]:
        return self.session.refuse(
            RealtimeErrorCode.CLIENT_TOO_SLOW,
            f"more than {limit} bytes of events waited to be sent; read them as they come",
        )

    def _observe(self, message: BaseModel) -> None:
        """Latency metrics and trace events of an event about to be sent.

        A delta covers the audio up to Riva's ``audio_processed`` when it came; a
        completed up to its last word's end (else that same position), as the own
        contract's ``end``. The last completed sent again with ``is_last_result`` is
        counted once.
        """
        now = self._loop.time()
        if isinstance(message, TranscriptionDelta):
            if not self._partial_seen:
                self._partial_seen = True
                latency = self._clock.latency(self.session.processed_seconds, now)
                if latency is not None:
                    self._interface.first_partial_latency.observe(latency)
                self.trace.stream_event(self._current_stream, "first_partial", latency=latency or 0)
        elif isinstance(message, TranscriptionCompleted):
            self._partial_seen = False
            if message.item_id == self._last_completed:
                return
            self._last_completed = message.item_id
            words = message.words_info.words
            end = words[-1].end_time / 1000 if words else self.session.processed_seconds
            latency = self._clock.latency(end, now)
            if latency is not None and message.transcript:
                self._interface.final_latency.observe(latency)
            self.trace.stream_event(
                self._current_stream, "final", latency=latency or 0, words=len(words)
            )
