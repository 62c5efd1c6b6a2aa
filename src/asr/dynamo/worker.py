"""The streaming recogniser as a Dynamo endpoint: :class:`DynamoWorker` and :func:`run_worker`.

Each session runs the embedded server's own :class:`~asr.embedded.servicer.StreamSession`
(its audio decoder, Silero VAD, sans-I/O recogniser, and the worker's shared decode pool),
fed with the Riva requests that the session's ``audio`` calls carry and answering with the
Riva responses its ``open`` call streams back (:mod:`.wire`). Per-session state lives in a
:class:`_Inbox` and the ``StreamSession``, never on the worker.

::

    run_worker(endpoint="asr.recognizer.stream", discovery_backend="etcd")
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
from google.protobuf.message import DecodeError

from ..embedded.catalog import ModelCatalog
from ..embedded.engine import Engine, WhisperEngine
from ..embedded.policy import PARTIAL_INTERVAL_MS
from ..embedded.scheduler import DecodeScheduler

# _Abort is how StreamSession.run ends a stream with a status; it is private to the
# servicer for now (the lead is asked to make it public as StreamAbort).
from ..embedded.servicer import ServicerConfig, StreamSession, _Abort
from ..signals import stop_event
from . import wire
from .runtime import new_runtime
from .wire import DEFAULT_ENDPOINT

__all__ = ["DEFAULT_ENDPOINT", "DynamoWorker", "run_worker", "serve"]

logger = logging.getLogger("asr.dynamo.worker")

IDLE_TIMEOUT = 60.0
"""Seconds a session may go without a call before the worker half-closes it for the
client: a client that died mid-stream sends no ``close``."""

_END: wire.Frame = {"end": True}


class _Inbox:
    """The requests of one session, from its ``audio`` calls to its ``StreamSession``."""

    def __init__(self, config: rasr.StreamingRecognizeRequest, idle_timeout: float) -> None:
        self._queue: asyncio.Queue[rasr.StreamingRecognizeRequest | None] = asyncio.Queue()
        self._queue.put_nowait(config)
        self._idle_timeout = idle_timeout
        self.next_seq = 0
        self.closed = False

    def put(self, seq: int, request: rasr.StreamingRecognizeRequest) -> None:
        self.next_seq = seq + 1
        self._queue.put_nowait(request)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._queue.put_nowait(None)

    async def requests(self) -> AsyncIterator[rasr.StreamingRecognizeRequest]:
        while True:
            try:
                async with asyncio.timeout(self._idle_timeout):
                    item = await self._queue.get()
            except TimeoutError:
                logger.info("session idle for %.0f s: half-closing it", self._idle_timeout)
                return
            if item is None:
                return
            yield item


class DynamoWorker:
    """The request handler of one worker: sessions, load and health.

    Args:
        engine: The recogniser, shared by all sessions (a GPU engine implementing
            :class:`~asr.embedded.engine.Engine` takes Whisper's place).
        scheduler: The decode pool, shared by all sessions; started by the caller.
        config: Capacity and recognition defaults, as the embedded server's.
        idle_timeout: Seconds without a call after which a session is half-closed.
    """

    def __init__(
        self,
        *,
        engine: Engine,
        scheduler: DecodeScheduler,
        config: ServicerConfig | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self.config = config or ServicerConfig()
        self.catalog = ModelCatalog(engine.name, self.config.model_aliases)
        self._idle_timeout = idle_timeout
        self._sessions: dict[str, _Inbox] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.serving = True
        """False while draining: new sessions are refused with UNAVAILABLE."""

    @property
    def active_streams(self) -> int:
        return len(self._sessions)

    async def wait_idle(self) -> None:
        """Wait until no session is open."""
        await self._idle.wait()

    def load(self) -> wire.WorkerLoad:
        return wire.WorkerLoad(
            active_streams=self.active_streams,
            max_streams=self.config.max_streams,
            serving=self.serving,
            queued_decodes=self._scheduler.queued,
        )

    async def handle(self, request: Any, context: Any) -> AsyncIterator[wire.Frame]:
        """The Dynamo endpoint handler: one call's response frames (:mod:`.wire`)."""
        op = request.get("op") if isinstance(request, dict) else None
        if op == wire.OPEN:
            async for frame in self._open(request, context):
                yield frame
        elif op == wire.AUDIO:
            yield self._audio(request)
        elif op == wire.CLOSE:
            yield self._close(request)
        elif op == wire.LOAD:
            yield self.load().to_frame()
        else:
            yield wire.error_frame(grpc.StatusCode.INVALID_ARGUMENT, f"unknown op {op!r}")

    async def _open(self, request: dict[str, Any], context: Any) -> AsyncIterator[wire.Frame]:
        session_id = str(request.get("session", ""))
        refusal = self._refusal(session_id)
        if refusal is not None:
            yield refusal
            return
        try:
            config = rasr.StreamingRecognizeRequest.FromString(bytes(request["config"]))
        except (KeyError, TypeError, DecodeError) as exc:
            yield wire.error_frame(grpc.StatusCode.INVALID_ARGUMENT, f"bad config: {exc}")
            return
        inbox = _Inbox(config, self._idle_timeout)
        self._sessions[session_id] = inbox
        self._idle.clear()
        session = StreamSession(
            engine=self._engine, scheduler=self._scheduler, catalog=self.catalog, config=self.config
        )
        log = logging.LoggerAdapter(logger, {"session": session_id})
        log.debug("session %s opened (stream %d)", session_id, session.id)
        out: asyncio.Queue[wire.Frame] = asyncio.Queue()
        pump = asyncio.create_task(self._pump(session, inbox, out), name=f"asr-dynamo-{session_id}")
        stopped = context.async_killed_or_stopped()
        try:
            yield {"opened": True}
            while True:
                frame = await self._next(out, stopped)
                if frame is None:
                    log.info("session %s: the client went away", session_id)
                    break
                yield frame
                if "end" in frame or "error" in frame:
                    break
        finally:
            del self._sessions[session_id]
            if not self._sessions:
                self._idle.set()
            inbox.close()
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            log.debug("session %s closed", session_id)

    def _refusal(self, session_id: str) -> wire.Frame | None:
        if not session_id:
            return wire.error_frame(grpc.StatusCode.INVALID_ARGUMENT, "open needs a session id")
        if session_id in self._sessions:
            return wire.error_frame(
                grpc.StatusCode.ALREADY_EXISTS, f"session {session_id} is open already"
            )
        if not self.serving:
            return wire.error_frame(grpc.StatusCode.UNAVAILABLE, "the worker is draining")
        if self.active_streams >= self.config.max_streams:
            return wire.error_frame(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the worker is at its limit of {self.config.max_streams} concurrent "
                "streams; retry later",
            )
        return None

    @staticmethod
    async def _next(out: asyncio.Queue[wire.Frame], stopped: Any) -> wire.Frame | None:
        """The next frame, or ``None`` once the caller stopped or dropped the call (the
        runtime does not cancel the handler; it sets the call's context)."""
        get = asyncio.ensure_future(out.get())
        done, _ = await asyncio.wait({get, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if get in done:
            return get.result()
        get.cancel()
        return None

    @staticmethod
    async def _pump(session: StreamSession, inbox: _Inbox, out: asyncio.Queue[wire.Frame]) -> None:
        try:
            async for response in session.run(inbox.requests()):
                out.put_nowait({"response": response.SerializeToString()})
            out.put_nowait(_END)
        except _Abort as exc:
            out.put_nowait(wire.error_frame(exc.code, exc.details))

    def _audio(self, request: dict[str, Any]) -> wire.Frame:
        inbox = self._sessions.get(str(request.get("session", "")))
        if inbox is None or inbox.closed:
            return wire.error_frame(grpc.StatusCode.NOT_FOUND, "no such session on this worker")
        seq = request.get("seq")
        if seq != inbox.next_seq:
            return wire.error_frame(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"audio call {seq} out of order; expected {inbox.next_seq}",
            )
        try:
            inbox.put(seq, rasr.StreamingRecognizeRequest.FromString(bytes(request["request"])))
        except (KeyError, TypeError, DecodeError) as exc:
            return wire.error_frame(grpc.StatusCode.INVALID_ARGUMENT, f"bad request: {exc}")
        return {"ack": seq}

    def _close(self, request: dict[str, Any]) -> wire.Frame:
        inbox = self._sessions.get(str(request.get("session", "")))
        if inbox is None:
            return wire.error_frame(grpc.StatusCode.NOT_FOUND, "no such session on this worker")
        inbox.close()
        return {"ack": inbox.next_seq}


async def serve(
    worker: DynamoWorker,
    runtime: Any,
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    on_ready: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    grace: float = 5.0,
) -> None:
    """Serve ``worker`` on ``endpoint`` of ``runtime`` until ``stop`` is set.

    On stop the worker drains: it leaves discovery and refuses new sessions, sessions in
    progress get up to ``grace`` seconds to finish, then the runtime shuts down.

    Args:
        worker: The handler.
        runtime: A ``dynamo.runtime.DistributedRuntime``.
        endpoint: ``namespace.component.endpoint``.
        on_ready: Called with the instance id once the endpoint is registered.
        stop: Set to stop; ``None`` serves until the runtime shuts down.
        grace: Seconds sessions in progress may take to finish after ``stop``.
    """
    served = runtime.endpoint(endpoint)
    # The binding returns a future, not a coroutine.
    task = asyncio.ensure_future(
        served.serve_endpoint(worker.handle, health_check_payload=wire.load_request())
    )
    instance = int(served.connection_id())
    runtime.set_health_status(True)
    logger.info("ASR worker %x serving %s (%s)", instance, endpoint, worker.catalog)
    if on_ready is not None:
        on_ready(instance)
    waiter = asyncio.ensure_future(stop.wait() if stop is not None else asyncio.Future[None]())
    try:
        await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the endpoint failed: raise its error
            return
        worker.serving = False
        runtime.set_health_status(False)
        with contextlib.suppress(Exception):  # best effort: the lease expires anyway
            await served.unregister_endpoint_instance()
        async with asyncio.timeout(grace):
            await worker.wait_idle()
    except TimeoutError:
        logger.warning("stopping with %d sessions still open", worker.active_streams)
    finally:
        waiter.cancel()
        runtime.shutdown()
        with contextlib.suppress(Exception, asyncio.CancelledError):
            await asyncio.wait_for(task, timeout=grace)


def run_worker(
    *,
    endpoint: str = DEFAULT_ENDPOINT,
    discovery_backend: str | None = None,
    request_plane: str | None = None,
    engine: Engine | None = None,
    max_streams: int = 8,
    decode_workers: int = 2,
    partial_interval_ms: int = PARTIAL_INTERVAL_MS,
    idle_timeout: float = IDLE_TIMEOUT,
    on_ready: Callable[[int], None] | None = None,
) -> None:
    """Serve the streaming recogniser on a Dynamo endpoint until SIGINT or SIGTERM. Blocks.

    Args:
        endpoint: ``namespace.component.endpoint`` to serve.
        discovery_backend: ``etcd``, ``file``, ``kubernetes`` or ``mem``; ``None`` reads
            ``DYN_DISCOVERY_BACKEND`` (default ``etcd``).
        request_plane: ``tcp`` or ``nats``; ``None`` reads ``DYN_REQUEST_PLANE``
            (default ``tcp``).
        engine: The recogniser; ``None`` loads :class:`~asr.embedded.engine.WhisperEngine`.
        max_streams: Concurrent sessions; the next gets RESOURCE_EXHAUSTED.
        decode_workers: Decodes that run at once.
        partial_interval_ms: New speech audio between two interim results.
        idle_timeout: Seconds without a call after which a session is half-closed.
        on_ready: Called with the instance id once serving.
    """
    config = ServicerConfig(max_streams=max_streams, partial_interval_ms=partial_interval_ms)
    asyncio.run(
        _run(
            endpoint=endpoint,
            discovery_backend=discovery_backend or os.environ.get("DYN_DISCOVERY_BACKEND", "etcd"),
            request_plane=request_plane or os.environ.get("DYN_REQUEST_PLANE", "tcp"),
            engine=engine,
            config=config,
            decode_workers=decode_workers,
            idle_timeout=idle_timeout,
            on_ready=on_ready,
        )
    )


async def _run(
    *,
    endpoint: str,
    discovery_backend: str,
    request_plane: str,
    engine: Engine | None,
    config: ServicerConfig,
    decode_workers: int,
    idle_timeout: float,
    on_ready: Callable[[int], None] | None,
) -> None:
    stop = stop_event()
    if engine is None:
        # Loading takes ~0.5 s (cached per process): keep the loop responsive.
        engine = await asyncio.get_running_loop().run_in_executor(
            None, lambda: WhisperEngine(num_workers=decode_workers)
        )
    scheduler = DecodeScheduler(decode_workers)
    await scheduler.start()
    try:
        runtime = new_runtime(discovery_backend, request_plane)
        worker = DynamoWorker(
            engine=engine, scheduler=scheduler, config=config, idle_timeout=idle_timeout
        )
        await serve(worker, runtime, endpoint=endpoint, on_ready=on_ready, stop=stop)
    finally:
        await scheduler.close()
