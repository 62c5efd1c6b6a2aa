"""One session of the own WebSocket contract, run: :class:`ContractConnection` carries out
what the :class:`~asr_server.protocol.Session` says over a
:class:`~asr_server.connection.Channel`, runs the per-session
:class:`~asr_server.relay.RivaRelay` and keeps the clock.

The route (:mod:`asr_server.ws_contract`) and the WebRTC ingest (:mod:`asr_server.webrtc`)
drive it, over a WebSocket or a data channel and audio track.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from asr.contract import ErrorCode, TranscriptFinal, TranscriptPartial
from asr.errors import ResourceExhaustedError
from asr.events import Final
from asr.logs import ContextAdapter

from .connection import Channel, ClientGone, Transport
from .latency import ArrivalClock
from .protocol import (
    Action,
    Close,
    EndAudio,
    EndRecording,
    FinishUtterance,
    ForwardAudio,
    Send,
    Session,
    StartBackend,
    StartRecording,
    State,
)
from .recordings import SessionRecorder
from .relay import RelayEvent, RivaRelay, StreamEnded, StreamStarted
from .state import ANONYMOUS, Gateway
from .tracing import SessionTrace

__all__ = ["ContractConnection", "INTERFACE"]

INTERFACE = "websocket"
"""The own WebSocket contract's ``interface`` label in the gateway's metrics."""


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


class ContractConnection:
    """Runs one session: the channel's reader and the relay task feed one inbox,
    processed in order; the channel's writer sends the outbox.

    Only :meth:`run` touches the :class:`Session`, so its state never races.

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
        self._session = session
        self._gw = gw
        self._metrics = gw.metrics
        self._interface = gw.metrics.interface(interface)
        self._interface_name = interface
        self.owner = ANONYMOUS
        """Who the session's recording belongs to (``owner_of`` the API key)."""
        self._recorder: SessionRecorder | None = None
        self._abandoned: SessionRecorder | None = None
        """A recorder that failed: closed at the end all the same (what it kept stays)."""
        self._log = log
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._gone = asyncio.Event()
        self._channel = Channel(
            transport,
            self._deliver,
            max_outbound_bytes=gw.settings.limits.max_outbound_bytes,
            close_timeout=gw.settings.close_timeout,
        )
        self._relay: RivaRelay | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._loop = asyncio.get_running_loop()
        self._clock = ArrivalClock()
        self.open_streams: set[int] = set()
        self._current_stream: int | None = None
        self._partial_seen = False
        self._close_code: int | None = None
        self.trace = SessionTrace(None, None, session.session_id)

    @property
    def riva_streams(self) -> int:
        """Riva streams the session holds now (a stream refused as exhausted included)."""
        return len(self.open_streams)

    def shutdown(self, timeout: float) -> None:
        """Ask the session to drain and close (from the server's shutdown)."""
        self._inbox.put_nowait(_Shutdown(timeout))

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
        await self.run(self._session.refuse(refusal.code, refusal.message))
        return False

    def _queued(self, position: int, timeout: float) -> None:
        # The reader runs while queued so that a client that leaves is noticed; what it
        # sends waits in the inbox (read_ahead frames, then TCP) until session.begin.
        self._channel.start_writing()
        self._channel.start_reading()
        self._log.info("queued at position %d", position)
        for action in self._session.queued(position, timeout):
            assert isinstance(action, Send)
            # Bounded by queue_size: a position only ever moves up.
            self._channel.send(action.message.model_dump_json(), force=True)

    def _deliver(self, item: str | bytes | ClientGone) -> None:
        if isinstance(item, ClientGone):
            self._gone.set()
        self._inbox.put_nowait(item)

    async def run(self, first: list[Action]) -> None:
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
                if isinstance(item, str | bytes):
                    await self._channel.processed()
                if not await self._apply(actions):
                    return
        except Exception:
            self._log.exception("internal error")
            with contextlib.suppress(Exception):
                await self._apply(
                    self._session.refuse(ErrorCode.INTERNAL_ERROR, "internal server error")
                )
        finally:
            if self._pump_task is not None:
                self._pump_task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._pump_task
            await self._channel.stop()
            await self._end_recording()  # a session that did not end with session.end
            self._metrics.active_streams.dec(len(self.open_streams))
            self.open_streams.clear()
            self.trace.end(audio_seconds=self._session.audio_seconds, close_code=self._close_code)

    async def _next(self) -> _Input | None:
        """The next input, or ``None`` when the session's deadline passed first."""
        deadlines = [self._session.deadline(), self._session.backend_deadline()]
        deadline = min((d for d in deadlines if d is not None), default=None)
        try:
            async with asyncio.timeout_at(deadline):
                return await self._inbox.get()
        except TimeoutError:
            return None

    def _dispatch(self, item: _Input | None) -> list[Action]:
        session, now = self._session, self._loop.time()
        if item is None:
            return session.tick(now)
        if isinstance(item, str):
            return session.receive_text(item, now)
        if isinstance(item, bytes):
            before = session.audio_seconds
            actions = session.receive_binary(item, now)
            if session.audio_seconds > before:
                self._interface.audio_seconds.inc(session.audio_seconds - before)
                self._clock.record(session.audio_seconds, now)
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
        return f"{self._session.session_id}-{index}"

    def _observe(self, message: Any) -> None:
        """Latency metrics and trace events of a message about to be sent."""
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

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; ``False`` once the connection is closed."""
        for action in actions:
            if isinstance(action, Send):
                self._observe(action.message)
                if not self._channel.send(action.message.model_dump_json()):
                    return await self._too_slow()
                if self._recorder is not None and isinstance(action.message, TranscriptFinal):
                    if not await self._record_final(action.message):
                        return False
            elif isinstance(action, StartBackend):
                self._relay = RivaRelay(self._gw.client, action.options)
                self._pump_task = asyncio.create_task(self._pump(self._relay))
            elif isinstance(action, ForwardAudio):
                assert self._relay is not None
                self._relay.feed(action.pcm16)
                if self._recorder is not None and not await self._record(action.pcm16):
                    return False
            elif isinstance(action, StartRecording):
                if not await self._start_recording(action.enhance_on_end):
                    return False
            elif isinstance(action, EndRecording):
                recording_id, job_id = await self._end_recording()
                ended = self._session.recording_ended(
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
                assert isinstance(action, Close)
                await self._close(action.code, action.reason)
                return False
        return True

    # -- the recording (issue 15): what is sent to Riva and the finals, teed ----------

    async def _start_recording(self, enhance_on_end: bool) -> bool:
        recordings = self._gw.recordings
        try:
            if recordings is None:
                raise RuntimeError("the session asked to be recorded but recordings are off")
            self._recorder = await recordings.start_session(
                session_id=self._session.session_id,
                key_id=self.owner,
                interface=self._interface_name,
                sample_rate=16_000,  # what Riva is sent: ForwardAudio is 16 kHz PCM16
                enhance_on_end=enhance_on_end,
            )
        except Exception:
            return await self._recording_failed("could not start the recording")
        self._log.info(
            "recording as %s", self._recorder.record.recording_id, extra={"owner": self.owner}
        )
        return True

    async def _record(self, pcm16: bytes) -> bool:
        assert self._recorder is not None
        try:
            await self._recorder.write(pcm16)
        except Exception:
            return await self._recording_failed("writing the recording failed")
        return True

    async def _record_final(self, message: TranscriptFinal) -> bool:
        assert self._recorder is not None
        # Stored as the plain event, times on the session's clock as sent.
        fields = set(Final.model_fields) - {"type"}
        final = Final.model_validate(message.model_dump(include=fields))
        try:
            await self._recorder.add_final(final)
        except Exception:
            return await self._recording_failed("storing a final of the recording failed")
        return True

    async def _recording_failed(self, what: str) -> bool:
        """Log it, tell the client once; the live transcript goes on, unrecorded."""
        self._log.exception(what)
        recorder, self._recorder = self._recorder, None
        if recorder is not None:
            self._abandoned = recorder
        return await self._apply(self._session.recording_failed(self._loop.time()))

    async def _end_recording(self) -> tuple[str | None, str | None]:
        """Close the recording (audio fsync'd, enhancement queued if asked); its ids."""
        recorder, self._recorder = self._recorder, None
        recorder = recorder or self._abandoned
        self._abandoned = None
        if recorder is None:
            return None, None
        try:
            ended = await recorder.end()
        except Exception:
            self._log.exception("closing the recording failed")
            return None, None
        if ended is None:
            return None, None  # deleted while it was recording
        return ended.recording_id, ended.enhancement_job_id

    async def _too_slow(self) -> bool:
        limit = self._channel.outbox.limit
        self._log.warning("client does not read: over %d bytes waiting; closing", limit)
        actions = self._session.refuse(
            ErrorCode.CLIENT_TOO_SLOW,
            f"more than {limit} bytes of messages waited to be sent; read them as they come",
        )
        for action in actions:
            if isinstance(action, Send):
                self._channel.send(action.message.model_dump_json(), force=True)
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
