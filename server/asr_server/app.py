"""The gateway's lifecycle: its ASGI app served by uvicorn in this process.

::

    async with GatewayServer(ServerSettings(port=0), RivaSettings(uri="127.0.0.1:50051")) as gw:
        print(gw.url)      # ws://127.0.0.1:PORT/v1/audio/transcriptions/stream

The app (:mod:`asr_server.asgi`) carries the routes: the own WebSocket contract
(:mod:`asr_server.ws_contract`), the probes, metrics, tokens and demo page
(:mod:`asr_server.routes_http`), ``/openapi.json``. This module binds the socket, runs
``uvicorn.Server`` with the bounds of :mod:`asr_server.connection_guard`, and drains the
sessions on shutdown.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import socket
import ssl
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import uvicorn
from prometheus_client import CollectorRegistry

from asr.logs import configure_logging
from asr.settings import RivaSettings
from asr.signals import stop_event

from .admission import Admission
from .asgi import build_app
from .auth import Authenticator
from .backend import open_backend
from .capacity import BackendCapacity
from .connection_guard import ConnectionCounter, guarded_protocols
from .log_filters import quiet_uvicorn
from .metrics import GatewayMetrics
from .recordings import RecordingPolicy, Recordings
from .routes_http import METRICS_PATH, TOKEN_PATH
from .settings import ServerSettings
from .state import Gateway
from .tracing import Tracing
from .ws_contract import STREAM_PATH

if TYPE_CHECKING:
    from asr.dynamo import DynamoSettings

__all__ = [
    "GatewayServer",
    "METRICS_PATH",
    "STREAM_PATH",
    "TOKEN_PATH",
    "run",
    "serve_forever",
]

logger = logging.getLogger("asr.server")


def ssl_context(settings: ServerSettings) -> ssl.SSLContext | None:
    """The TLS context for ``settings.cert``/``key``, or ``None`` for plain HTTP/WS."""
    if settings.cert is None or settings.key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(settings.cert, settings.key)
    return context


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port`` (both stacks for ``""`` and ``::``)."""
    if host in ("", "::") and socket.has_dualstack_ipv6():
        sock = socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True)
    else:
        family = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM)[0][0]
        sock = socket.create_server((host, port), family=family)
    sock.setblocking(False)
    return sock


class GatewayServer:
    """The gateway with its backend's client; an async context manager.

    Args:
        settings: Where to listen and what to accept, and which backend
            (``settings.backend``); read from ``ASR_SERVER_*`` when omitted.
        riva: How to reach Riva; read from ``RIVA_*`` when omitted.
        dynamo: How to reach ASR workers on Dynamo, with ``backend="dynamo"``; read from
            ``ASR_DYNAMO_*`` when omitted.
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
        dynamo: DynamoSettings | None = None,
        registry: CollectorRegistry | None = None,
        tracer_provider: Any = None,
    ) -> None:
        self.settings = settings if settings is not None else ServerSettings()
        self.riva_settings = riva if riva is not None else RivaSettings()
        self.metrics = GatewayMetrics(registry)
        backend = open_backend(
            self.settings, self.riva_settings, dynamo=dynamo, metrics=self.metrics
        )
        self.client = backend.client
        self.backend_label = backend.label
        """What recognises, for people: ``Riva at host:port`` or ``Dynamo endpoint ...``."""
        self.tracing = Tracing(self.settings.tracing, tracer_provider)
        secret = self.settings.token_secret
        token_secret = (
            secret.get_secret_value().encode() if secret is not None else secrets.token_bytes(32)
        )
        self.gateway = Gateway(
            settings=self.settings,
            riva_settings=self.riva_settings,
            client=self.client,
            metrics=self.metrics,
            tracing=self.tracing,
            auth=Authenticator(self.settings.api_keys, token_secret),
            admission=Admission(self.settings.limits, self.metrics),
        )
        self.connection_counter = ConnectionCounter(self.settings.connections)
        self.app = build_app(self.gateway)
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        quiet_uvicorn()

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

    def _config(self) -> uvicorn.Config:
        settings = self.settings
        bounds = settings.connections
        http, ws = guarded_protocols(self.connection_counter, close_timeout=settings.close_timeout)
        config = uvicorn.Config(
            self.app,
            http=http,
            ws=ws,
            lifespan="off",
            log_config=None,
            access_log=False,
            # The client's address is the TCP peer's, as before: X-Forwarded-For is not
            # trusted (it would let a client pick its own authentication back-off).
            proxy_headers=False,
            server_header=False,
            # Frames up to 4x the limit are read so the client gets a typed error for
            # them; beyond that the WebSocket layer closes with 1009.
            ws_max_size=settings.limits.max_frame_bytes * 4,
            # Audio does not compress; deflate would only cost CPU.
            ws_per_message_deflate=False,
            ws_ping_interval=settings.keepalive_seconds,
            ws_ping_timeout=settings.keepalive_seconds,
            h11_max_incomplete_event_size=bounds.max_request_bytes,
            limit_concurrency=bounds.max_connections,
            timeout_graceful_shutdown=int(2 * settings.close_timeout + 1),
        )
        config.load()
        config.ssl = ssl_context(settings)  # TLS 1.2 at least, as before uvicorn
        return config

    async def start(self) -> None:
        """Listen; :attr:`port` is known when this returns.

        With Dynamo this first waits up to ``ASR_DYNAMO_CONNECT_TIMEOUT`` for a worker
        (and raises :class:`~asr.errors.DeadlineExceededError` when none appears).
        """
        await self.client.__aenter__()
        if self.settings.recording is not RecordingPolicy.OFF:
            # Migrates the database, marks what a killed gateway left recording as
            # interrupted, starts the job workers and the retention sweeper.
            self.gateway.recordings = await Recordings.open(
                self.settings.recordings, riva=self.client
            )
        self._socket = _listen(self.settings.host, self.settings.port)
        self._server = uvicorn.Server(self._config())
        self._server.lifespan = self._server.config.lifespan_class(self._server.config)
        await self._server.startup(sockets=[self._socket])
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
        for listener in self._server.servers:
            listener.close()  # no new connections; open ones go on
        admission = self.gateway.admission
        admission.close_queue()  # waiters are refused (SHUTTING_DOWN), none queue anew
        logger.info("shutting down: draining %d sessions for up to %g s", admission.active, timeout)
        for session in admission.sessions:
            session.shutdown(timeout)
        # Each session closes itself at the deadline; the closing handshake may take
        # close_timeout more.
        await admission.wait_idle(timeout + 2 * self.settings.close_timeout + 1)

    async def stop(self) -> None:
        """Close every connection (1001 going away) and the backend's client."""
        if self._server is not None:
            server, self._server = self._server, None
            for listener in server.servers:
                listener.close()
            # Sessions end at once with 1001 (uvicorn itself would send 1012).
            self.gateway.admission.close_queue()
            for session in self.gateway.admission.sessions:
                session.shutdown(0)
            await self.gateway.admission.wait_idle(2 * self.settings.close_timeout + 1)
            await server.shutdown(sockets=[self._socket] if self._socket else None)
            self._socket = None
        recordings, self.gateway.recordings = self.gateway.recordings, None
        if recordings is not None:
            await recordings.close()
        await self.client.close()

    @property
    def port(self) -> int:
        """The TCP port listened on."""
        if self._socket is None:
            raise RuntimeError("the server is not started")
        port: int = self._socket.getsockname()[1]
        return port

    @property
    def active_sessions(self) -> int:
        """Sessions running now, all interfaces together."""
        return self.gateway.admission.active

    @property
    def capacity(self) -> BackendCapacity:
        """The backend's session capacity, configured or learned."""
        return self.gateway.admission.capacity

    @property
    def riva_streams(self) -> int:
        """Riva streams the sessions hold now (a stream refused as exhausted included)."""
        return self.gateway.admission.riva_streams

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
