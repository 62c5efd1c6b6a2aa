"""What every streaming interface's connection does the same: carry out a sans-I/O
session's actions over a :class:`~asr_server.connection.Channel`, run its
:class:`~asr_server.relay.RivaRelay`, keep the clock, count Riva's streams and tee the
session's recording.

:class:`StreamingConnection` is generic over the session
(:class:`~asr_server.streaming_session.StreamingSession` describes the methods it calls);
each interface subclasses it with what differs: how a sent message is taken out of its
``Send`` action, the latency metrics of its messages, which of them is a final for the
recording, its error codes, when a client frame is acknowledged to the channel.
:class:`~asr_server.contract_connection.ContractConnection` runs the own contract (over a
WebSocket or WebRTC), :class:`~asr_server.realtime_connection.RealtimeConnection` NVIDIA's
realtime API.
"""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from pydantic import BaseModel

from asr.errors import ResourceExhaustedError
from asr.events import Final
from asr.logs import ContextAdapter

from .actions import (
    Close,
    EndAudio,
    EndRecording,
    FinishUtterance,
    ForwardAudio,
    StartBackend,
    StartRecording,
    State,
)
from .connection import Channel, ClientGone, Transport
from .latency import ArrivalClock
from .recording_tee import RecordingTee
from .relay import RelayEvent, RivaRelay, StreamEnded, StreamStarted
from .session_timer import Expired, SessionTimer
from .state import ANONYMOUS, Gateway
from .streaming_session import StreamingSession
from .tracing import SessionTrace

__all__ = ["StreamingConnection"]


SessionT = TypeVar("SessionT", bound=StreamingSession)


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


class StreamingConnection(ABC, Generic[SessionT]):
    """Runs one session: the channel's reader and the relay task feed one inbox,
    processed in order; the channel's writer sends the outbox.

    Only :meth:`run` touches the session, so its state never races.

    Args:
        transport: The client's connection (an accepted WebSocket, or WebRTC's data
            channel and audio track).
        session: The session's protocol state.
        gw: The gateway's shared parts.
        log: The session's logger.
        interface: The ``interface`` label of the session's metrics and recording.
        read_ahead: Client frames read before they are processed (the channel's).
    """

    def __init__(
        self,
        transport: Transport,
        session: SessionT,
        gw: Gateway,
        log: ContextAdapter,
        *,
        interface: str,
        read_ahead: int = 64,
    ) -> None:
        self.session = session
        self._gw = gw
        self._metrics = gw.metrics
        self._interface = gw.metrics.interface(interface)
        self._interface_name = interface
        self.owner = ANONYMOUS
        """Who the session's recording belongs to (``owner_of`` the API key)."""
        self._log = log
        self._recording = RecordingTee(gw.recordings, log)
        self._inbox: asyncio.Queue[_Input | Expired] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._channel = Channel(
            transport,
            self._deliver,
            max_outbound_bytes=gw.settings.limits.max_outbound_bytes,
            close_timeout=gw.settings.close_timeout,
            read_ahead=read_ahead,
        )
        self._relay: RivaRelay | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._timer = SessionTimer(self._loop, self._deadline, self._inbox.put_nowait)
        self._clock = ArrivalClock()
        self.open_streams: set[int] = set()
        self._current_stream: int | None = None
        self._close_code: int | None = None
        self.trace = SessionTrace(None, None, session.session_id)

    # -- what each interface says -------------------------------------------------------

    @abstractmethod
    def _outgoing(self, action: object) -> BaseModel | None:
        """The message ``action`` sends to the client, ``None`` if it is no ``Send``."""

    def _observe(self, message: BaseModel) -> None:
        """Latency metrics and trace events of a message about to be sent."""

    @abstractmethod
    def _final(self, message: BaseModel) -> Final | None:
        """The final ``message`` carries, to keep in the recording (``None``: none)."""

    def _audio_position(self) -> float:
        """Seconds of the session's audio that Riva's result positions count."""
        return self.session.audio_seconds

    @abstractmethod
    def _internal_error(self) -> Sequence[object]:
        """The session's refusal after a bug here (``internal_error``)."""

    @abstractmethod
    def _client_too_slow(self, limit: int) -> Sequence[object]:
        """The session's refusal of a client that leaves ``limit`` bytes unread."""

    async def _frame_done(self, frame: bool) -> None:
        """An input was processed (a client frame when ``frame``): let the reader go on."""
        if frame:
            await self._channel.processed()

    # -- the run ------------------------------------------------------------------------

    @property
    def riva_streams(self) -> int:
        """Riva streams the session holds now (a stream refused as exhausted included)."""
        return len(self.open_streams)

    def shutdown(self, timeout: float) -> None:
        """Ask the session to drain and close (from the server's shutdown)."""
        self._inbox.put_nowait(_Shutdown(timeout))

    def _deliver(self, item: str | bytes | ClientGone) -> None:
        if isinstance(item, ClientGone):
            self._gone.set()
        self._inbox.put_nowait(item)

    async def serve(self, opening: Sequence[object]) -> None:
        """Run an admitted session from ``opening`` (what its ``open`` returned): traced,
        counted as started when it opened, its audio logged when it closes."""
        self.trace = self._gw.tracing.session(self.session.session_id)
        try:
            if self.session.state is State.OPEN:
                self._interface.sessions_started.inc()
            await self.run(opening)
        finally:
            seconds = self.session.audio_seconds
            self._log.info(
                "closed after %.1f s of audio",
                seconds,
                extra={"audio_seconds": round(seconds, 3)},
            )

    async def run(self, first: Sequence[object]) -> None:
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
                    # uvicorn closes with 1011 when the client stops answering keepalive
                    # pings (a client that stopped reading): the server's close.
                    ending = self._channel.transport.ended()
                    self._interface.session_ended(ending.code, ending.by)
                    self._close_code = ending.code
                    self._log.info(
                        "connection ended (%d, closed by the %s)", ending.code, ending.by
                    )
                    return
                actions = self._dispatch(item)
                await self._frame_done(isinstance(item, str | bytes))
                if not await self._apply(actions):
                    return
        except Exception:
            self._log.exception("internal error")
            with contextlib.suppress(Exception):
                await self._apply(self._internal_error())
        finally:
            self._timer.cancel()
            if self._pump_task is not None:
                self._pump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pump_task
            await self._channel.stop()
            await self._recording.end()  # a session that did not end as it should
            self._metrics.active_streams.dec(len(self.open_streams))
            self.open_streams.clear()
            self.trace.end(audio_seconds=self.session.audio_seconds, close_code=self._close_code)

    def _deadline(self) -> float | None:
        """The earlier of the session's deadlines, ``None`` when it has none."""
        deadline, backend = self.session.deadline(), self.session.backend_deadline()
        if deadline is None or backend is None:
            return backend if deadline is None else deadline
        return min(deadline, backend)

    async def _next(self) -> _Input | None:
        """The next input, or ``None`` when the session's deadline passed first."""
        while True:
            self._timer.arm()
            item = await self._inbox.get()
            if not isinstance(item, Expired):
                return item
            if self._timer.passed(item):
                return None

    def _dispatch(self, item: _Input | None) -> Sequence[object]:
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
            self._clock.record(self._audio_position(), now)
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
            # Riva finished the call although the session had not ended its audio: a bug
            # here or there; the session ends with internal_error.
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

    async def _apply(self, actions: Sequence[object]) -> bool:
        """Carry out ``actions``; ``False`` once the connection is closed."""
        for action in actions:
            if (message := self._outgoing(action)) is not None:
                # A final is stored before it is sent: one the client saw is in the
                # recording, even if the gateway is killed right after.
                final = self._final(message) if self._recording.active else None
                if final is not None and not await self._record(
                    self._recording.add_final(final), "storing a final of the recording failed"
                ):
                    return False
                self._observe(message)
                if not await self._channel.push(message.model_dump_json()):
                    return await self._too_slow()
            elif isinstance(action, StartBackend):
                self._relay = RivaRelay(self._gw.client, action.options)
                self._pump_task = asyncio.create_task(self._pump(self._relay))
            elif isinstance(action, ForwardAudio):
                assert self._relay is not None
                self._relay.feed(action.pcm16)
                if self._recording.active and not await self._record(
                    self._recording.write(action.pcm16), "writing the recording failed"
                ):
                    return False
            elif isinstance(action, StartRecording):
                started = self._recording.start(
                    session_id=self.session.session_id,
                    owner=self.owner,
                    interface=self._interface_name,
                    enhance_on_end=action.enhance_on_end,
                )
                if not await self._record(started, "could not start the recording"):
                    return False
            elif isinstance(action, EndRecording):
                recording_id, job_id = await self._recording.end()
                ended = self.session.recording_ended(
                    recording_id=recording_id, enhancement_job_id=job_id, now=self._loop.time()
                )
                return await self._apply(ended)
            elif isinstance(action, FinishUtterance):
                assert self._relay is not None
                self._relay.finish_utterance()
            elif isinstance(action, EndAudio):
                assert self._relay is not None
                self._relay.end()
            else:
                assert isinstance(action, Close), action
                await self._close(action.code, action.reason)
                return False
        return True

    async def _record(self, step: Awaitable[None], what: str) -> bool:
        """Await a step of the recording; if it fails, log ``what`` and tell the client
        once: the live transcript goes on, unrecorded. ``False`` once closed."""
        try:
            await step
        except Exception:
            self._log.exception(what)
            self._recording.abandon()
            return await self._apply(self.session.recording_failed(self._loop.time()))
        return True

    async def _too_slow(self) -> bool:
        limit = self._channel.outbox.limit
        self._log.warning("client does not read: over %d bytes waiting; closing", limit)
        for action in self._client_too_slow(limit):
            if (message := self._outgoing(action)) is not None:
                self._channel.send(message.model_dump_json(), force=True)
            elif isinstance(action, Close):
                await self._close(action.code, action.reason)
        return False

    async def _close(self, code: int, reason: str) -> None:
        self._close_code = code
        self._interface.session_ended(code, "server")
        self._log.info("closing: %d %s", code, reason, extra={"close_code": code})
        if not await self._channel.close(code, reason):
            self._log.info(
                "client did not take the last messages in %g s", self._channel.close_timeout
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
