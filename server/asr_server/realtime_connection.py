"""One connection of NVIDIA's realtime API: frames to
:class:`~asr_server.realtime.RealtimeSession` to Riva and back.

The realtime counterpart of :class:`asr_server.ws_contract.ContractConnection`, over the
same :class:`~asr_server.connection.Channel` (reader with read-ahead, bounded outbox,
close within ``close_timeout``) and the same :class:`~asr_server.relay.RivaRelay`; what
differs is the session it drives and one rule of reading: NVIDIA's client sends a file as
fast as it reads it, so while the session is :attr:`~RealtimeSession.backlogged` (Riva has
not caught up with the audio sent to it) the frames read are not acknowledged to the
channel, whose reader stops after ``read_ahead`` of them; TCP then slows the client down.
Fast audio is held back rather than refused.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from asr.errors import ResourceExhaustedError
from asr.logs import ContextAdapter

from .connection import AsgiTransport, Channel, ClientGone
from .latency import ArrivalClock
from .protocol import Close, EndAudio, FinishUtterance, ForwardAudio, StartBackend, State
from .realtime import Action, RealtimeErrorCode, RealtimeSession, Send
from .realtime.events import AnyServerEvent, TranscriptionCompleted, TranscriptionDelta
from .relay import RelayEvent, RivaRelay, StreamEnded, StreamStarted
from .state import Gateway
from .tracing import SessionTrace

__all__ = ["INTERFACE", "READ_AHEAD", "RealtimeConnection"]

INTERFACE = "realtime"
"""The ``interface`` label of this API in the gateway's metrics."""

READ_AHEAD = 16
"""Client frames read before they are processed: what the session may take beyond its
backlog bound before reading stops (8 append/commit pairs of NVIDIA's client)."""


@dataclass(frozen=True, slots=True)
class _BackendFailed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _BackendDone:
    pass


@dataclass(frozen=True, slots=True)
class _Shutdown:
    timeout: float


_Input = (
    str
    | bytes
    | RelayEvent
    | StreamStarted
    | StreamEnded
    | _BackendFailed
    | _BackendDone
    | ClientGone
    | _Shutdown
)


class RealtimeConnection:
    """Runs one realtime session: the channel's reader and the relay task feed one
    inbox, processed in order; the channel's writer sends the outbox.

    Only :meth:`run` touches the :class:`RealtimeSession`, so its state never races.

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
        self.session = session
        self._gw = gw
        self._metrics = gw.metrics
        self._interface = gw.metrics.interface(INTERFACE)
        self._log = log
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._channel = Channel(
            transport,
            self._inbox.put_nowait,
            max_outbound_bytes=gw.settings.limits.max_outbound_bytes,
            close_timeout=gw.settings.close_timeout,
            read_ahead=READ_AHEAD,
        )
        self._relay: RivaRelay | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._clock = ArrivalClock()
        self._held = 0
        """Client frames processed but not acknowledged to the channel (backlog)."""
        self.open_streams: set[int] = set()
        self._current_stream: int | None = None
        self._partial_seen = False
        self._last_completed: str | None = None
        self._close_code: int | None = None
        self.trace = SessionTrace(None, None, session.session_id)

    @property
    def riva_streams(self) -> int:
        """Riva streams the session holds now (a stream refused as exhausted included)."""
        return len(self.open_streams)

    def shutdown(self, timeout: float) -> None:
        """Ask the session to drain and close (from the server's shutdown)."""
        self._inbox.put_nowait(_Shutdown(timeout))

    async def run(self, first: list[Action]) -> None:
        """Carry out ``first`` (the session's opening, or its refusal), then run the
        session until it closes or the client goes."""
        self._channel.start_writing()
        try:
            if not await self._apply(first):
                return
            self._channel.start_reading()
            while True:
                item = await self._next()
                if isinstance(item, ClientGone):
                    ending = self._channel.transport.ended()
                    self._interface.session_ended(ending.code, ending.by)
                    self._close_code = ending.code
                    self._log.info(
                        "connection ended (%d, closed by the %s)", ending.code, ending.by
                    )
                    return
                actions = self._dispatch(item)
                if isinstance(item, str | bytes):
                    self._held += 1
                await self._release()
                if not await self._apply(actions):
                    return
        except Exception:
            self._log.exception("internal error")
            with contextlib.suppress(Exception):
                await self._apply(
                    self.session.refuse(RealtimeErrorCode.INTERNAL_ERROR, "internal server error")
                )
        finally:
            if self._pump_task is not None:
                self._pump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pump_task
            await self._channel.stop()
            self._metrics.active_streams.dec(len(self.open_streams))
            self.open_streams.clear()
            self.trace.end(audio_seconds=self.session.audio_seconds, close_code=self._close_code)

    async def _release(self) -> None:
        """Let the reader go on for the frames held, unless Riva is still behind."""
        if self.session.backlogged:
            return
        while self._held:
            self._held -= 1
            await self._channel.processed()

    async def _next(self) -> _Input | None:
        """The next input, or ``None`` when the session's deadline passed first."""
        deadlines = [self.session.deadline(), self.session.backend_deadline()]
        deadline = min((d for d in deadlines if d is not None), default=None)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._inbox.get()
        except TimeoutError:
            return None

    def _dispatch(self, item: _Input | None) -> list[Action]:
        session, now = self.session, self._loop.time()
        if item is None:
            return session.tick(now)
        if isinstance(item, str | bytes):
            before = session.audio_seconds
            if isinstance(item, str):
                actions = session.receive_text(item, now)
            else:
                actions = session.receive_binary(item, now)
            if session.audio_seconds > before:
                self._interface.audio_seconds.inc(session.audio_seconds - before)
            # Riva's positions count the audio forwarded (cleared audio left out).
            self._clock.record(session.forwarded_seconds, now)
            return actions
        if isinstance(item, RelayEvent):
            return session.backend_event(
                item.event, offset=item.offset, forced=item.forced, now=now
            )
        if isinstance(item, StreamStarted):
            self._stream_started(item.index)
            return []
        if isinstance(item, StreamEnded):
            self._stream_ended(item.index)
            return session.backend_stream_ended(forced=item.forced, now=now)
        if isinstance(item, _Shutdown):
            self._log.info("draining for shutdown")
            return session.shutdown(now, item.timeout)
        if isinstance(item, _BackendFailed):
            self._log.warning("backend failed: %r", item.error)
            if isinstance(item.error, ResourceExhaustedError):
                self._gw.admission.backend_exhausted(now)
            self.trace.failed(item.error)
            return session.backend_failed(item.error, now)
        assert isinstance(item, _BackendDone)
        if session.state is State.OPEN:
            self._log.error("Riva ended the stream before the session's end")
        return session.backend_done(now)

    def _stream_started(self, index: int) -> None:
        self.open_streams.add(index)
        self._current_stream = index
        self._metrics.active_streams.inc()
        self.trace.stream_started(index)
        self._log.debug("riva stream opened", extra={"stream_id": self._stream_id(index)})

    def _stream_ended(self, index: int | None) -> None:
        if index is None or index not in self.open_streams:
            return
        self.open_streams.discard(index)
        self._metrics.active_streams.dec()
        self.trace.stream_ended(index)
        self._log.debug("riva stream closed", extra={"stream_id": self._stream_id(index)})

    def _stream_id(self, index: int) -> str:
        return f"{self.session.session_id}-{index}"

    def _observe(self, event: AnyServerEvent) -> None:
        """Latency metrics and trace events of an event about to be sent.

        A delta covers the audio up to Riva's ``audio_processed`` when it came; a
        completed up to its last word's end (else that same position), as the own
        contract's ``end``. The last completed sent again with ``is_last_result`` is
        counted once.
        """
        now = self._loop.time()
        if isinstance(event, TranscriptionDelta):
            if not self._partial_seen:
                self._partial_seen = True
                latency = self._clock.latency(self.session.processed_seconds, now)
                if latency is not None:
                    self._interface.first_partial_latency.observe(latency)
                self.trace.stream_event(self._current_stream, "first_partial", latency=latency or 0)
        elif isinstance(event, TranscriptionCompleted):
            self._partial_seen = False
            if event.item_id == self._last_completed:
                return
            self._last_completed = event.item_id
            words = event.words_info.words
            end = words[-1].end_time / 1000 if words else self.session.processed_seconds
            latency = self._clock.latency(end, now)
            if latency is not None and event.transcript:
                self._interface.final_latency.observe(latency)
            self.trace.stream_event(
                self._current_stream, "final", latency=latency or 0, words=len(words)
            )

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; ``False`` once the connection is closed."""
        for action in actions:
            if isinstance(action, Send):
                self._observe(action.event)
                if not self._channel.send(action.event.model_dump_json()):
                    return await self._too_slow()
            elif isinstance(action, StartBackend):
                self._relay = RivaRelay(self._gw.client, action.options)
                self._pump_task = asyncio.create_task(self._pump(self._relay))
            elif isinstance(action, ForwardAudio):
                assert self._relay is not None
                self._relay.feed(action.pcm16)
            elif isinstance(action, FinishUtterance):
                assert self._relay is not None
                self._relay.finish_utterance()
            elif isinstance(action, EndAudio):
                assert self._relay is not None
                self._relay.end()
            else:
                assert isinstance(action, Close)
                await self._close(action.code, action.reason)
                return False
        return True

    async def _too_slow(self) -> bool:
        limit = self._channel.outbox.limit
        self._log.warning("client does not read: over %d bytes waiting; closing", limit)
        actions = self.session.refuse(
            RealtimeErrorCode.CLIENT_TOO_SLOW,
            f"more than {limit} bytes of events waited to be sent; read them as they come",
        )
        for action in actions:
            if isinstance(action, Send):
                self._channel.send(action.event.model_dump_json(), force=True)
            elif isinstance(action, Close):
                await self._close(action.code, action.reason)
        return False

    async def _close(self, code: int, reason: str) -> None:
        self._close_code = code
        self._interface.session_ended(code, "server")
        self._log.info("closing: %d %s", code, reason, extra={"close_code": code})
        if not await self._channel.close(code, reason):
            self._log.info(
                "client did not take the last events in %g s", self._channel.close_timeout
            )

    async def _pump(self, relay: RivaRelay) -> None:
        try:
            async for event in relay.events():
                self._inbox.put_nowait(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self._inbox.put_nowait(_BackendFailed(exc))
        else:
            self._inbox.put_nowait(_BackendDone())
