"""The asyncio WebSocket server: moves frames between sockets, :class:`Session` and Riva.

::

    async with GatewayServer(ServerSettings(port=0), RivaSettings(uri="127.0.0.1:50051")) as gw:
        print(gw.url)      # ws://127.0.0.1:PORT/v1/audio/transcriptions/stream

Everything the contract says lives in :mod:`asr_server.protocol`; this module only reads
frames, runs the per-session :class:`~asr_server.relay.RivaRelay`, keeps the clock and
carries out the session's actions. Besides the WebSocket endpoint it serves the demo page,
``GET /healthz`` (the process is up), ``GET /readyz`` (Riva answers its health check),
``GET /metrics`` (Prometheus) and ``GET /v1/tokens`` (a short-lived browser token for an
API key).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from asr.client import RivaASRClient
from asr.contract import ErrorCode, TranscriptFinal, TranscriptPartial
from asr.errors import ResourceExhaustedError
from asr.logs import ContextAdapter, RedactingFilter, configure_logging
from asr.settings import RivaSettings
from asr.signals import stop_event

from .auth import FailureBackoff, authenticate, bearer, matching_key
from .capacity import BackendCapacity
from .connection_guard import ConnectionCounter, guarded_connection
from .latency import ArrivalClock
from .log_filters import compact_handshake_failures
from .metrics import CONTENT_TYPE, GatewayMetrics
from .protocol import (
    Action,
    Close,
    EndAudio,
    FinishUtterance,
    ForwardAudio,
    Send,
    Session,
    StartBackend,
    State,
)
from .relay import RelayEvent, RivaRelay, StreamEnded, StreamStarted
from .responses import bytes_response, json_response, static_response, text_response
from .settings import ServerSettings
from .tokens import issue_token
from .tracing import SessionTrace, Tracing

__all__ = [
    "GatewayServer",
    "METRICS_PATH",
    "STREAM_PATH",
    "TOKEN_PATH",
    "run",
    "serve_forever",
]

STREAM_PATH = "/v1/audio/transcriptions/stream"
"""The WebSocket endpoint."""

TOKEN_PATH = "/v1/tokens"
"""Issues browser tokens. ``GET`` because websockets' HTTP parser accepts nothing else; the
API key must come in the ``Authorization`` header (never the URL) and the answer is
``Cache-Control: no-store``."""

METRICS_PATH = "/metrics"
"""Prometheus text exposition."""

logger = logging.getLogger("asr.server")

# Client frames read ahead of the session: beyond this the reader stops reading the
# socket, so a client that floods the server is slowed down by TCP, not buffered.
_READ_AHEAD_FRAMES = 64


def ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The TLS context for ``settings.cert``/``key``, or ``None`` for plain HTTP/WS."""
    if settings.cert is None or settings.key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.cert, settings.key)
    return context


def _address(connection: ServerConnection) -> str:
    """The client's IP address (the unit of the authentication back-off)."""
    remote = connection.remote_address
    return str(remote[0]) if remote else "unknown"


def _too_many_failures(wait: float) -> Response:
    return json_response(
        HTTPStatus.TOO_MANY_REQUESTS,
        {"error": f"too many failed attempts; try again in {wait:.0f} s"},
        headers=(("Retry-After", str(max(1, round(wait)))),),
    )


class GatewayServer:
    """The WebSocket server with its Riva client; an async context manager.

    Args:
        settings: Where to listen and what to accept; read from ``ASR_SERVER_*`` when
            omitted.
        riva: How to reach Riva; read from ``RIVA_*`` when omitted.
        registry: Prometheus registry for this server's metrics; a new one when omitted
            (never the global registry, so several servers can run in one process).
        tracer_provider: OpenTelemetry tracer provider used when ``settings.tracing`` is
            on; the global one when omitted.
    """

    def __init__(
        self,
        settings: ServerSettings | None = None,
        riva: RivaSettings | None = None,
        *,
        registry: CollectorRegistry | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings()
        self.riva_settings = riva if riva is not None else RivaSettings()
        self.metrics = GatewayMetrics(registry)
        self.client = RivaASRClient(self.riva_settings, metrics=self.metrics.riva)
        self.tracing = Tracing(self.settings.tracing, tracer_provider)
        self.active_sessions = 0
        secret = self.settings.token_secret
        self._token_secret = (
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32)
        )
        self._server: Server | None = None
        self._connections: set[_Connection] = set()
        self._auth_failures = FailureBackoff()
        self.capacity = BackendCapacity(self.settings.limits.backend_streams)
        self.connection_counter = ConnectionCounter(self.settings.connections)
        self._idle = asyncio.Event()
        self._idle.set()
        self._ws_logger = logging.getLogger("asr.server.websockets")
        # websockets logs request lines and headers at DEBUG: ?api_key=, ?token= and
        # Authorization values are redacted before any handler sees them.
        if not any(isinstance(f, RedactingFilter) for f in self._ws_logger.filters):
            self._ws_logger.addFilter(RedactingFilter())
            self._ws_logger.addFilter(_served_http_is_not_a_rejection)
            self._ws_logger.addFilter(compact_handshake_failures)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Listen; :attr:`port` is known when this returns."""
        await self.client.__aenter__()
        limits = self.settings.limits
        origins: list[Origin | None] | None = None
        if self.settings.allowed_origins:
            origins = [Origin(o) for o in self.settings.allowed_origins]
            origins.append(None)  # non-browser clients send no Origin
        self._server = await serve(
            self._handle,
            self.settings.host,
            self.settings.port,
            ssl=ssl_context(self.settings),
            process_request=self._process_request,
            origins=origins,
            # Frames up to 4x the limit are read so the client gets a typed error for
            # them; websockets itself closes with 1009 beyond that.
            max_size=limits.max_frame_bytes * 4,
            # Audio does not compress; deflate would only cost CPU.
            compression=None,
            close_timeout=self.settings.close_timeout,
            ping_interval=self.settings.keepalive_seconds,
            ping_timeout=self.settings.keepalive_seconds,
            create_connection=guarded_connection(self.connection_counter),
            logger=self._ws_logger,
        )
        logger.info("listening on %s", self.url)

    async def shutdown(self, timeout: float | None = None) -> None:
        """Stop accepting, let open sessions deliver their finals, close them with 1001.

        Args:
            timeout: Seconds sessions get to drain; ``settings.shutdown_timeout`` when
                omitted. Sessions still open then are closed (1001) without their finals.
        """
        if self._server is None:
            return
        timeout = self.settings.shutdown_timeout if timeout is None else timeout
        self._server.server.close()  # no new connections; open ones go on
        logger.info(
            "shutting down: draining %d sessions for up to %g s", len(self._connections), timeout
        )
        for connection in list(self._connections):
            connection.shutdown(timeout)
        # Each session closes itself at the deadline; the closing handshake may take
        # close_timeout more.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout + 2 * self.settings.close_timeout + 1):
                await self._idle.wait()

    async def stop(self) -> None:
        """Close every connection (1001 going away) and the Riva client."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        await self.client.close()

    @property
    def port(self) -> int:
        """The TCP port listened on."""
        if self._server is None:
            raise RuntimeError("the server is not started")
        for sock in self._server.sockets:
            port: int = sock.getsockname()[1]
            return port
        raise RuntimeError("the server has no listening socket")

    @property
    def riva_streams(self) -> int:
        """Riva streams the sessions hold now (a stream refused as exhausted included)."""
        return sum(len(connection.open_streams) for connection in self._connections)

    @property
    def base_url(self) -> str:
        """``http(s)://host:port`` of the demo page and probes."""
        scheme = "https" if self.settings.tls else "http"
        host = self.settings.host
        if host in ("", "0.0.0.0", "::"):
            host = "localhost"
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    @property
    def url(self) -> str:
        """``ws(s)://host:port/v1/audio/transcriptions/stream``."""
        return "ws" + self.base_url.removeprefix("http") + STREAM_PATH

    # -- HTTP -------------------------------------------------------------------------

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = urlsplit(request.path).path
        if path == STREAM_PATH:
            return None  # the WebSocket handshake goes on
        if path == "/healthz":
            return json_response(HTTPStatus.OK, {"status": "ok"})
        if path == "/readyz":
            ready = await self.client.health(timeout=self.settings.readiness_timeout)
            status = HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE
            return json_response(status, {"status": "ready" if ready else "riva unavailable"})
        if path == METRICS_PATH:
            return bytes_response(HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE)
        if path == TOKEN_PATH:
            return self._issue_token(connection, request)
        if path == "/favicon.ico":
            # Browsers ask for it whatever the page links; a 404 would be logged as a
            # rejected connection on every visit. The page's own icon is favicon.svg.
            static = self.settings.static_dir
            if static is not None and (static / "favicon.svg").is_file():
                return static_response(static, "/favicon.svg")
            return bytes_response(HTTPStatus.NO_CONTENT, b"", "image/svg+xml")
        if self.settings.static_dir is not None:
            return static_response(self.settings.static_dir, path)
        return text_response(HTTPStatus.NOT_FOUND, "not found\n")

    def _issue_token(self, connection: ServerConnection, request: Request) -> Response:
        if not self.settings.api_keys:
            return json_response(
                HTTPStatus.NOT_FOUND,
                {"error": "tokens are issued only when ASR_SERVER_API_KEYS is set"},
            )
        address = _address(connection)
        if wait := self._auth_failures.blocked_for(address, time.monotonic()):
            return _too_many_failures(wait)
        offered = bearer(request.headers.get("Authorization"))
        key = matching_key(offered, self.settings.api_keys) if offered else None
        if key is None:
            self._auth_failures.failed(address, time.monotonic())
            logger.info("token refused: missing or invalid API key")
            return json_response(
                HTTPStatus.UNAUTHORIZED,
                {"error": "send an API key as 'Authorization: Bearer KEY'"},
                headers=(("WWW-Authenticate", 'Bearer realm="asr"'),),
            )
        ttl = self.settings.token_ttl_seconds
        token, claims = issue_token(self._token_secret, api_key=key, now=time.time(), ttl=ttl)
        logger.info(
            "token issued",
            extra={"token_id": claims.token_id, "key_id": claims.key_id, "ttl": ttl},
        )
        body = {"token": token, "expires_at": claims.expires_at, "expires_in": int(ttl)}
        return json_response(HTTPStatus.OK, body, secret=True)

    def _authenticate(
        self, request: Request, query: dict[str, list[str]], address: str, log: ContextAdapter
    ) -> str | None:
        """``None`` when the client may open a session, else why not (said to the client)."""
        if not self.settings.api_keys:
            return None
        if wait := self._auth_failures.blocked_for(address, time.monotonic()):
            log.info("refused: too many failed attempts from %s", address)
            return f"too many failed attempts; try again in {wait:.0f} s"
        decision = authenticate(
            self.settings.api_keys,
            self._token_secret,
            query_keys=query.get("api_key", []),
            query_tokens=query.get("token", []),
            authorization=request.headers.get("Authorization"),
            now=time.time(),
        )
        if not decision.allowed:
            self._auth_failures.failed(address, time.monotonic())
            log.info("refused: %s", decision.refusal, extra={"key_id": decision.key_id})
            return decision.refusal
        self._auth_failures.succeeded(address)
        if decision.token_id is not None:
            log.info("authenticated by token %s of key %s", decision.token_id, decision.key_id)
        else:
            log.info("authenticated by API key %s", decision.key_id)
        return None

    # -- WebSocket --------------------------------------------------------------------

    async def _handle(self, websocket: ServerConnection) -> None:
        request = websocket.request
        assert request is not None
        query = parse_qs(urlsplit(request.path).query, keep_blank_values=True)
        loop = asyncio.get_running_loop()
        session = Session(
            session_id=secrets.token_hex(8),
            limits=self.settings.limits,
            now=loop.time(),
            query=query,
            require_config=self.settings.require_config,
        )
        log = ContextAdapter(logger, {"session_id": session.session_id})
        connection = _Connection(websocket, session, self, log)
        refusal = self._authenticate(request, query, _address(websocket), log)
        if refusal is not None:
            await connection.run(session.refuse(ErrorCode.UNAUTHORIZED, refusal))
            return
        if self.active_sessions >= self.settings.limits.max_sessions:
            log.warning("refused: %d sessions already open", self.active_sessions)
            await connection.run(
                session.refuse(
                    ErrorCode.TOO_MANY_SESSIONS,
                    f"the server is at its limit of {self.settings.limits.max_sessions} "
                    "sessions; try again later",
                )
            )
            return
        if not self.capacity.admits(self.active_sessions, loop.time()):
            limit = self.capacity.limit(loop.time())
            log.warning("refused: the backend takes %s streams", limit)
            await connection.run(
                session.refuse(
                    ErrorCode.TOO_MANY_SESSIONS,
                    f"the speech backend is at its capacity of {limit} streams; try again later",
                )
            )
            return
        self.active_sessions += 1
        self.metrics.active_sessions.inc()
        self._connections.add(connection)
        self._idle.clear()
        log.info("opened from %s", websocket.remote_address)
        connection.trace = self.tracing.session(session.session_id)
        try:
            first = session.open()
            if session.state is State.OPEN:
                self.metrics.sessions_started.inc()
            await connection.run(first)
        finally:
            self.active_sessions -= 1
            self.metrics.active_sessions.dec()
            self._connections.discard(connection)
            if not self._connections:
                self._idle.set()
            log.info(
                "closed after %.1f s of audio",
                session.audio_seconds,
                extra={"audio_seconds": round(session.audio_seconds, 3)},
            )


def _served_http_is_not_a_rejection(record: logging.LogRecord) -> bool:
    """Drop websockets' "connection rejected (200 OK)" lines.

    websockets logs every HTTP response returned instead of an upgrade as a rejected
    connection; for the demo page, probes and metrics that is normal service, and at INFO
    it would fill the log with one line per probe. Real refusals (4xx, 5xx) stay.
    """
    if record.msg == "connection rejected (%d %s)" and isinstance(record.args, tuple):
        status = record.args[0] if record.args else 500
        return not (isinstance(status, int) and status < 400)
    return True


# --- one connection ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _BackendFailed:
    error: BaseException


@dataclass(frozen=True, slots=True)
class _BackendDone:
    pass


@dataclass(frozen=True, slots=True)
class _ClientGone:
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
    | _ClientGone
    | _Shutdown
)


class _Outbox:
    """Messages waiting for a client, bounded in bytes: the writer task sends them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def put(self, text: str, *, force: bool = False) -> bool:
        """Queue ``text``; ``False`` (not queued) when that would exceed the limit."""
        size = len(text)
        if not force and self.queued_bytes + size > self.limit:
            return False
        self.queued_bytes += size
        self.queue.put_nowait(text)
        return True

    def sent(self, text: str) -> None:
        self.queued_bytes -= len(text)
        self.queue.task_done()


class _Connection:
    """Runs one session: a reader task and a relay task feed one inbox, processed in order;
    a writer task sends the outbox.

    Only :meth:`run` touches the :class:`Session`, so its state never races.
    """

    def __init__(
        self,
        websocket: ServerConnection,
        session: Session,
        server: GatewayServer,
        log: ContextAdapter,
    ) -> None:
        self._ws = websocket
        self._session = session
        self._server = server
        self._metrics = server.metrics
        self._settings = server.settings
        self._log = log
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        # Client frames read but not yet processed; the reader waits while there are too
        # many, except once the session is closing (then it reads and drops, so that the
        # client's close frame is not stuck behind unread audio).
        self._unprocessed = 0
        self._read_gate = asyncio.Condition()
        self._closing = False
        self._outbox = _Outbox(server.settings.limits.max_outbound_bytes)
        self._relay: RivaRelay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()
        self._clock = ArrivalClock()
        self.open_streams: set[int] = set()
        self._current_stream: int | None = None
        self._partial_seen = False
        self._close_code: int | None = None
        self.trace = SessionTrace(None, None, session.session_id)

    def shutdown(self, timeout: float) -> None:
        """Ask the session to drain and close (from the server's shutdown)."""
        self._inbox.put_nowait(_Shutdown(timeout))

    async def run(self, first: list[Action]) -> None:
        self._tasks.append(asyncio.create_task(self._write()))
        try:
            if not await self._apply(first):
                return
            self._tasks.append(asyncio.create_task(self._read()))
            while True:
                item = await self._next()
                if isinstance(item, _ClientGone):
                    # websockets itself closes with 1011 when the client stops answering
                    # its keepalive pings (a client that stopped reading): the server's
                    # close, whatever code the broken connection ends with.
                    sent = self._ws.protocol.close_sent
                    by = "server" if sent is not None else "client"
                    code = sent.code if sent is not None else (self._ws.close_code or 1006)
                    self._metrics.sessions_ended.labels(close_code=str(code), by=by).inc()
                    self._close_code = code
                    self._log.info("connection ended (%d, closed by the %s)", code, by)
                    return
                actions = self._dispatch(item)
                if isinstance(item, str | bytes):
                    async with self._read_gate:
                        self._unprocessed -= 1
                        self._read_gate.notify_all()
                if not await self._apply(actions):
                    return
        except Exception:
            self._log.exception("internal error")
            with contextlib.suppress(Exception):
                await self._apply(
                    self._session.refuse(ErrorCode.INTERNAL_ERROR, "internal server error")
                )
        finally:
            for task in self._tasks:
                task.cancel()
            for task in self._tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
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
                self._metrics.audio_seconds.inc(session.audio_seconds - before)
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
                self._server.capacity.exhausted(self._server.riva_streams, now)
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
                    self._metrics.first_partial_latency.observe(latency)
                self.trace.stream_event(self._current_stream, "first_partial", latency=latency or 0)
        elif isinstance(message, TranscriptFinal):
            self._partial_seen = False
            latency = self._clock.latency(message.end, now)
            if latency is not None and message.text:
                self._metrics.final_latency.observe(latency)
            self.trace.stream_event(
                self._current_stream, "final", latency=latency or 0, words=len(message.words)
            )

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; ``False`` once the connection is closed."""
        for action in actions:
            if isinstance(action, Send):
                self._observe(action.message)
                if not self._outbox.put(action.message.model_dump_json()):
                    return await self._too_slow()
            elif isinstance(action, StartBackend):
                self._relay = RivaRelay(self._server.client, action.options)
                self._tasks.append(asyncio.create_task(self._pump(self._relay)))
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
        limit = self._outbox.limit
        self._log.warning("client does not read: over %d bytes waiting; closing", limit)
        actions = self._session.refuse(
            ErrorCode.CLIENT_TOO_SLOW,
            f"more than {limit} bytes of messages waited to be sent; read them as they come",
        )
        for action in actions:
            if isinstance(action, Send):
                self._outbox.put(action.message.model_dump_json(), force=True)
            elif isinstance(action, Close):
                await self._close(action.code, action.reason)
        return False

    async def _close(self, code: int, reason: str) -> None:
        """Send what is queued, then close; a client that does not take them within
        ``close_timeout`` (twice: the messages, the handshake) is disconnected."""
        self._close_code = code
        self._closing = True
        async with self._read_gate:
            self._read_gate.notify_all()
        self._metrics.sessions_ended.labels(close_code=str(code), by="server").inc()
        self._log.info("closing: %d %s", code, reason, extra={"close_code": code})
        timeout = self._settings.close_timeout
        try:
            async with asyncio.timeout(timeout):
                await self._outbox.queue.join()
        except TimeoutError:
            self._log.info("client did not take the last messages in %g s", timeout)
        try:
            async with asyncio.timeout(timeout):
                await self._ws.close(code, reason)
        except TimeoutError:
            self._ws.transport.abort()

    async def _write(self) -> None:
        outbox = self._outbox
        while True:
            text = await outbox.queue.get()
            try:
                await self._ws.send(text)
            except ConnectionClosed:
                # Nobody to send to: count everything as handled so _close does not wait.
                outbox.sent(text)
                while not outbox.queue.empty():
                    outbox.sent(outbox.queue.get_nowait())
                continue
            outbox.sent(text)

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                async with self._read_gate:
                    await self._read_gate.wait_for(
                        lambda: self._closing or self._unprocessed < _READ_AHEAD_FRAMES
                    )
                if self._closing:
                    continue
                self._unprocessed += 1
                self._inbox.put_nowait(frame)
        except ConnectionClosed:
            pass
        self._inbox.put_nowait(_ClientGone())

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


# --- entry points --------------------------------------------------------------------


async def serve_forever(
    settings: ServerSettings | None = None,
    riva: RivaSettings | None = None,
    *,
    on_ready: Callable[[GatewayServer], None] | None = None,
) -> None:
    """Serve until SIGINT or SIGTERM, then drain open sessions (see
    :meth:`GatewayServer.shutdown`) and stop.

    Args:
        settings: Server settings; ``ASR_SERVER_*`` when omitted.
        riva: Riva connection; ``RIVA_*`` when omitted.
        on_ready: Called with the started server (e.g. to print its URL).
    """
    stop = stop_event()
    async with GatewayServer(settings, riva) as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
        logger.info("stopping")
        await server.shutdown()


def run(
    settings: ServerSettings | None = None,
    riva: RivaSettings | None = None,
    *,
    on_ready: Callable[[GatewayServer], None] | None = None,
) -> None:
    """Blocking entry point for ``asr serve``: logging as ``settings.log_level`` and
    ``log_format`` say, then :func:`serve_forever` in a new event loop."""
    settings = settings if settings is not None else ServerSettings()
    configure_logging(settings.log_level, settings.log_format)
    asyncio.run(serve_forever(settings, riva, on_ready=on_ready))
