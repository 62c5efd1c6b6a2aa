"""One session of the own WebSocket contract, run: :class:`ContractConnection` carries out
what the :class:`~asr_server.protocol.Session` says over a
:class:`~asr_server.connection.Channel`; the shared machinery (relay, clock, Riva's
streams, the recording) is :class:`~asr_server.streaming_connection.StreamingConnection`'s.

The route (:mod:`asr_server.ws_contract`) and the WebRTC ingest (:mod:`asr_server.webrtc`)
drive it, over a WebSocket or a data channel and audio track. What is the contract's own:
its messages (``Send.message``) and their latency metrics, ``transcript.final`` as what
the recording keeps, and the wait in the admission queue.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel

from asr.contract import ErrorCode, TranscriptFinal, TranscriptPartial
from asr.events import Final
from asr.logs import ContextAdapter

from .connection import Transport
from .protocol import Send, Session
from .state import Gateway
from .streaming_connection import StreamingConnection

__all__ = ["ContractConnection", "INTERFACE"]

INTERFACE = "websocket"
"""The own WebSocket contract's ``interface`` label in the gateway's metrics."""

_FINAL_FIELDS = set(Final.model_fields) - {"type"}
"""What of a ``transcript.final`` the recording keeps: the plain event, times on the
session's clock as sent."""


class ContractConnection(StreamingConnection[Session]):
    """Runs one session of the own contract.

    Args:
        transport: The client's connection: an accepted WebSocket
            (:class:`~asr_server.connection.AsgiTransport`), or a WebRTC data channel and
            audio track (:mod:`asr_server.webrtc`).
        session: The session's protocol state.
        gw: The gateway's shared parts.
        log: The session's logger.
        interface: The ``interface`` label of the session's metrics.
    """

    def __init__(
        self,
        transport: Transport,
        session: Session,
        gw: Gateway,
        log: ContextAdapter,
        *,
        interface: str = INTERFACE,
    ) -> None:
        super().__init__(transport, session, gw, log, interface=interface)
        self._partial_seen = False

    async def wait_for_slot(self) -> bool:
        """Take a place in the gateway's admission, waiting in its queue when it is on
        (``session.queued`` at each new position); whether the session may begin (hold
        it at once). When not, the client was refused or went away: the connection is
        over."""
        admission = self._gw.admission
        refusal = await admission.wait_for_slot(
            self._interface_name, announce=self._queued, gone=self._gone
        )
        if refusal is None:
            return True
        if self._gone.is_set():
            ending = self._channel.transport.ended()
            self._interface.session_ended(ending.code, ending.by)
            self._log.info("the client went away while queued (%d)", ending.code)
            await self._channel.stop()
            return False
        self._log.warning("refused: %s", refusal.log)
        await self.run(self.session.refuse(refusal.code, refusal.message))
        return False

    def _queued(self, position: int, timeout: float) -> None:
        # The reader runs while queued so that a client that leaves is noticed; what it
        # sends waits in the inbox (read_ahead frames, then TCP) until session.begin.
        self._channel.start_writing()
        self._channel.start_reading()
        self._log.info("queued at position %d", position)
        for action in self.session.queued(position, timeout):
            assert isinstance(action, Send)
            # Bounded by queue_size: a position only ever moves up.
            self._channel.send(action.message.model_dump_json(), force=True)

    def _outgoing(self, action: object) -> BaseModel | None:
        return action.message if isinstance(action, Send) else None

    def _final(self, message: BaseModel) -> Final | None:
        if not isinstance(message, TranscriptFinal):
            return None
        return Final.model_validate(message.model_dump(include=_FINAL_FIELDS))

    def _internal_error(self) -> Sequence[object]:
        return self.session.refuse(ErrorCode.INTERNAL_ERROR, "internal server error")

    def _client_too_slow(self, limit: int) -> Sequence[object]:
        return self.session.refuse(
            ErrorCode.CLIENT_TOO_SLOW,
            f"more than {limit} bytes of messages waited to be sent; read them as they come",
        )

    def _observe(self, message: BaseModel) -> None:
        now = self._loop.time()
        if isinstance(message, TranscriptPartial):
            if not self._partial_seen:
                self._partial_seen = True
                latency = self._clock.latency(message.end, now)
                if latency is not None:
                    self._interface.first_partial_latency.observe(latency)
                self.trace.stream_event(self._current_stream, "first_partial", latency=latency or 0)
        elif isinstance(message, TranscriptFinal):
            self._partial_seen = False
            latency = self._clock.latency(message.end, now)
            if latency is not None and message.text:
                self._interface.final_latency.observe(latency)
            self.trace.stream_event(
                self._current_stream, "final", latency=latency or 0, words=len(message.words)
            )
