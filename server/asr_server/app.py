"""The asyncio WebSocket server: moves frames between sockets, :class:`Session` and Riva.

::

    async with GatewayServer(ServerSettings(port=0), RivaSettings(uri="127.0.0.1:50051")) as gw:
        print(gw.url)      # ws://127.0.0.1:PORT/v1/audio/transcriptions/stream

Everything the contract says lives in :mod:`asr_server.protocol`; this module only reads
frames, runs the per-session :class:`~asr_server.relay.RivaRelay`, keeps the clock and
carries out the session's actions. Besides the WebSocket endpoint it serves the demo page,
``GET /healthz`` (the process is up) and ``GET /readyz`` (Riva answers its health check).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import Self
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Origin

from asr.client import RivaASRClient
from asr.settings import RivaSettings

from .messages import ErrorCode
from .protocol import (
    Action,
    Close,
    EndAudio,
    FinishUtterance,
    ForwardAudio,
    Send,
    Session,
    StartBackend,
)
from .relay import RelayEvent, RivaRelay
from .responses import json_response, static_response, text_response
from .settings import ServerSettings

__all__ = [
    "GatewayServer",
    "STREAM_PATH",
    "run",
    "serve_forever",
]

STREAM_PATH = "/v1/audio/transcriptions/stream"
"""The WebSocket endpoint."""

logger = logging.getLogger("asr.server")


class _SessionLog(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: object, kwargs: object) -> tuple[object, object]:  # type: ignore[override]
        extra = self.extra or {}
        return f"[{extra.get('session_id')}] {msg}", kwargs


def ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The TLS context for ``settings.cert``/``key``, or ``None`` for plain HTTP/WS."""
    if settings.cert is None or settings.key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.cert, settings.key)
    return context


class GatewayServer:
    """The WebSocket server with its Riva client; an async context manager.

    Args:
        settings: Where to listen and what to accept; read from ``ASR_SERVER_*`` when
            omitted.
        riva: How to reach Riva; read from ``RIVA_*`` when omitted.
    """

    def __init__(
        self, settings: ServerSettings | None = None, riva: RivaSettings | None = None
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings()
        self.riva_settings = riva if riva is not None else RivaSettings()
        self.client = RivaASRClient(self.riva_settings)
        self.active_sessions = 0
        self._server: Server | None = None

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
            logger=logging.getLogger("asr.server.websockets"),
        )
        logger.info("listening on %s", self.url)

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
        if self.settings.static_dir is not None:
            return static_response(self.settings.static_dir, path)
        return text_response(HTTPStatus.NOT_FOUND, "not found\n")

    def _authorized(self, request: Request, query: dict[str, list[str]]) -> bool:
        keys = self.settings.api_keys
        if not keys:
            return True
        offered = query.get("api_key", [])
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            offered.append(header[7:].strip())
        return any(hmac.compare_digest(o.encode(), k.encode()) for o in offered for k in keys)

    # -- WebSocket --------------------------------------------------------------------

    async def _handle(self, connection: ServerConnection) -> None:
        request = connection.request
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
        log = _SessionLog(logger, {"session_id": session.session_id})
        if not self._authorized(request, query):
            log.info("refused: bad API key from %s", connection.remote_address)
            await _Connection(connection, session, self.client, log).run(
                session.refuse(ErrorCode.UNAUTHORIZED, "missing or invalid API key")
            )
            return
        if self.active_sessions >= self.settings.limits.max_sessions:
            log.warning("refused: %d sessions already open", self.active_sessions)
            await _Connection(connection, session, self.client, log).run(
                session.refuse(
                    ErrorCode.TOO_MANY_SESSIONS,
                    f"the server is at its limit of {self.settings.limits.max_sessions} "
                    "sessions; try again later",
                )
            )
            return
        self.active_sessions += 1
        log.info("opened from %s", connection.remote_address)
        try:
            await _Connection(connection, session, self.client, log).run(session.open())
        finally:
            self.active_sessions -= 1
            log.info("closed after %.1f s of audio", session.audio_seconds)


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


_Input = str | bytes | RelayEvent | _BackendFailed | _BackendDone | _ClientGone


class _Connection:
    """Runs one session: a reader task and a relay task feed one inbox, processed in order.

    Only :meth:`run` touches the :class:`Session`, so its state never races.
    """

    def __init__(
        self,
        websocket: ServerConnection,
        session: Session,
        client: RivaASRClient,
        log: logging.LoggerAdapter[logging.Logger],
    ) -> None:
        self._ws = websocket
        self._session = session
        self._client = client
        self._log = log
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue()
        self._relay: RivaRelay | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._loop = asyncio.get_running_loop()

    async def run(self, first: list[Action]) -> None:
        try:
            if not await self._apply(first):
                return
            self._tasks.append(asyncio.create_task(self._read()))
            while True:
                item = await self._next()
                if isinstance(item, _ClientGone):
                    return
                if not await self._apply(self._dispatch(item)):
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

    async def _next(self) -> _Input | None:
        """The next input, or ``None`` when the session's deadline passed first."""
        deadline = self._session.deadline()
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
            return session.receive_binary(item, now)
        if isinstance(item, RelayEvent):
            return session.backend_event(
                item.event, offset=item.offset, forced=item.forced, now=now
            )
        if isinstance(item, _BackendFailed):
            self._log.warning("backend failed: %r", item.error)
            return session.backend_failed(item.error, now)
        assert isinstance(item, _BackendDone)
        return session.backend_done(now)

    async def _apply(self, actions: list[Action]) -> bool:
        """Carry out ``actions``; ``False`` once the connection is closed."""
        for action in actions:
            if isinstance(action, Send):
                try:
                    await self._ws.send(action.message.model_dump_json())
                except ConnectionClosed:
                    return False
            elif isinstance(action, StartBackend):
                self._relay = RivaRelay(self._client, action.options)
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
                self._log.info("closing: %d %s", action.code, action.reason)
                await self._ws.close(action.code, action.reason)
                return False
        return True

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
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
    """Serve until SIGINT or SIGTERM.

    Args:
        settings: Server settings; ``ASR_SERVER_*`` when omitted.
        riva: Riva connection; ``RIVA_*`` when omitted.
        on_ready: Called with the started server (e.g. to print its URL).
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    async with GatewayServer(settings, riva) as server:
        if on_ready is not None:
            on_ready(server)
        await stop.wait()
        logger.info("stopping")


def run(
    settings: ServerSettings | None = None,
    riva: RivaSettings | None = None,
    *,
    on_ready: Callable[[GatewayServer], None] | None = None,
) -> None:
    """Blocking entry point for ``asr serve``: :func:`serve_forever` in a new event loop."""
    asyncio.run(serve_forever(settings, riva, on_ready=on_ready))
