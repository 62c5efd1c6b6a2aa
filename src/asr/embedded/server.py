"""The embedded Riva-compatible ASR server: :class:`EmbeddedServer` and the blocking :func:`run`.

It serves ``nvidia.riva.asr.RivaSpeechRecognition`` and ``grpc.health.v1.Health`` on
``grpc.aio``, so the official ``nvidia-riva-client`` and this package's client work
against it unchanged::

    async with EmbeddedServer(port=0) as server:
        print(f"serving on 127.0.0.1:{server.port}")
        await server.wait_for_termination()
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

from ..errors import ConfigurationError
from ..signals import stop_event
from .catalog import DEFAULT_MODEL_ALIASES
from .endpointer import EndpointParams
from .engine import Engine, WhisperEngine
from .health import HealthServicer
from .policy import PARTIAL_INTERVAL_MS
from .scheduler import DecodeScheduler
from .servicer import RivaASRServicer, ServicerConfig

__all__ = ["ASR_SERVICE", "EmbeddedServer", "ServerTLS", "run"]

logger = logging.getLogger("asr.embedded.server")

ASR_SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"
"""The gRPC service name, as the health service reports it."""

_MAX_MESSAGE_BYTES = 64 * 1024 * 1024  # offline Recognize takes whole files


@dataclass(frozen=True, slots=True)
class ServerTLS:
    """Certificates for serving over TLS.

    Attributes:
        cert: PEM certificate chain of the server.
        key: PEM private key of ``cert``.
        client_ca: PEM CA certificates; when given, clients must present a certificate
            signed by one of them (mutual TLS).
    """

    cert: Path
    key: Path
    client_ca: Path | None = None

    def credentials(self) -> grpc.ServerCredentials:
        """gRPC server credentials from the PEM files.

        Raises:
            ConfigurationError: A file cannot be read.
        """
        try:
            pair = (self.key.read_bytes(), self.cert.read_bytes())
            roots = self.client_ca.read_bytes() if self.client_ca is not None else None
        except OSError as exc:
            raise ConfigurationError(f"cannot read TLS files: {exc}") from exc
        return grpc.ssl_server_credentials(
            [pair], root_certificates=roots, require_client_auth=roots is not None
        )


class EmbeddedServer:
    """A Riva-compatible ASR server running Whisper tiny.en and Silero VAD on CPU.

    Args:
        host: Interface to bind.
        port: Port to bind; 0 picks a free one (see :attr:`port` after :meth:`start`).
        engine: The recogniser; ``None`` loads :class:`WhisperEngine` (shared per process).
        max_streams: Concurrent streams; the next gets RESOURCE_EXHAUSTED.
        partial_interval_ms: New speech audio between two interim results.
        decode_workers: Decodes that run at once (finals first, stale partials dropped).
        endpoint: Endpointing defaults for request fields left at 0; ``None`` uses
            :class:`EndpointParams` defaults.
        speculative: Start decoding a final at the first-pass end of utterance.
        tls: Serve over TLS (and mutual TLS when it names a client CA) instead of plain
            HTTP/2.
        model_aliases: Model names besides the engine's own that select it; ``None``
            serves :data:`~.catalog.DEFAULT_MODEL_ALIASES` (NIM model names that
            frameworks default to).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 50051,
        engine: Engine | None = None,
        max_streams: int = 8,
        partial_interval_ms: int = PARTIAL_INTERVAL_MS,
        decode_workers: int = 2,
        endpoint: EndpointParams | None = None,
        speculative: bool = True,
        tls: ServerTLS | None = None,
        model_aliases: Sequence[str] | None = None,
    ) -> None:
        if max_streams < 1:
            raise ConfigurationError(f"max_streams must be at least 1, got {max_streams}")
        if partial_interval_ms < 100:
            raise ConfigurationError(
                f"partial_interval_ms must be at least 100, got {partial_interval_ms}"
            )
        self.host = host
        self._requested_port = port
        self._engine = engine
        self._decode_workers = decode_workers
        self.config = ServicerConfig(
            max_streams=max_streams,
            partial_interval_ms=partial_interval_ms,
            endpoint=endpoint or EndpointParams(),
            speculative=speculative,
            model_aliases=(
                DEFAULT_MODEL_ALIASES if model_aliases is None else tuple(model_aliases)
            ),
        )
        self.tls = tls
        self._port: int | None = None
        self._server: grpc.aio.Server | None = None
        self._scheduler: DecodeScheduler | None = None
        self._health: HealthServicer | None = None
        self._servicer: RivaASRServicer | None = None

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: The server has not been started.
        """
        if self._port is None:
            raise RuntimeError("the server is not started")
        return self._port

    @property
    def active_streams(self) -> int:
        """``StreamingRecognize`` calls in progress."""
        return self._servicer.active_streams if self._servicer is not None else 0

    @property
    def decode_stats(self) -> dict[str, int]:
        """Decodes run, dropped as stale, and waiting in the queue, since :meth:`start`."""
        sched = self._scheduler
        if sched is None:
            return {"ran": 0, "dropped": 0, "queued": 0}
        return {"ran": sched.ran, "dropped": sched.dropped, "queued": sched.queued}

    @property
    def decode_busy_seconds(self) -> float:
        """Wall time the decode pool spent decoding, summed over workers."""
        return self._scheduler.busy_seconds if self._scheduler is not None else 0.0

    @property
    def engine(self) -> Engine | None:
        """The engine in use (loaded by :meth:`start` when none was given)."""
        return self._engine

    async def start(self) -> int:
        """Load the engine if needed, bind and start serving.

        Returns:
            The bound port.

        Raises:
            ConfigurationError: The models fail verification or the port cannot be bound.
        """
        if self._server is not None:
            return self.port
        loop = asyncio.get_running_loop()
        if self._engine is None:
            # Loading takes ~0.5 s (cached per process): keep the loop responsive.
            workers = self._decode_workers
            self._engine = await loop.run_in_executor(
                None, lambda: WhisperEngine(num_workers=workers)
            )
        self._scheduler = DecodeScheduler(self._decode_workers)
        await self._scheduler.start()
        server = grpc.aio.server(
            options=[
                ("grpc.max_receive_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.max_send_message_length", _MAX_MESSAGE_BYTES),
                ("grpc.so_reuseport", 0),
            ]
        )
        servicer = RivaASRServicer(
            engine=self._engine, scheduler=self._scheduler, config=self.config
        )
        rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(servicer, server)
        self._servicer = servicer
        self._health = HealthServicer()
        health_grpc.add_HealthServicer_to_server(self._health, server)
        address = f"{self.host}:{self._requested_port}"
        try:
            if self.tls is None:
                port = int(server.add_insecure_port(address))
            else:
                port = int(server.add_secure_port(address, self.tls.credentials()))
        except (RuntimeError, OSError) as exc:
            await self._scheduler.close()
            raise ConfigurationError(f"cannot bind {address}: {exc}") from exc
        await server.start()
        self._server, self._port = server, port
        for service in ("", ASR_SERVICE):
            self._health.set(service, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "embedded Riva ASR server (%s) serving on %s:%d", self._engine.name, self.host, port
        )
        return port

    def set_serving(self, serving: bool) -> None:
        """Report SERVING or NOT_SERVING on the health service without stopping.

        Clients that check health (``RIVA_HEALTH_CHECK``) send new streams elsewhere
        while this server is NOT_SERVING; streams in progress carry on. Use it to drain a
        server before maintenance.
        """
        if self._health is not None:
            status = health_pb2.HealthCheckResponse
            self._health.set_all(status.SERVING if serving else status.NOT_SERVING)

    async def stop(self, grace: float | None = 1.0) -> None:
        """Stop serving: report NOT_SERVING, let calls finish for ``grace`` seconds."""
        if self._server is None:
            return
        if self._health is not None:
            self._health.set_all(health_pb2.HealthCheckResponse.NOT_SERVING)
        await self._server.stop(grace)
        if self._scheduler is not None:
            await self._scheduler.close()
        self._server = None
        logger.info("embedded Riva ASR server on %s:%s stopped", self.host, self._port)

    async def wait_for_termination(self) -> None:
        """Wait until the server stops."""
        if self._server is not None:
            await self._server.wait_for_termination()

    async def __aenter__(self) -> EmbeddedServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


def run(
    *, host: str, port: int, on_ready: Callable[[str], None] | None = None, **kwargs: object
) -> None:
    """Serve until SIGINT or SIGTERM, then stop gracefully. Blocks.

    Args:
        host: Interface to bind.
        port: Port to bind; 0 picks a free one.
        on_ready: Called once with ``"host:port"`` when serving.
        **kwargs: Further :class:`EmbeddedServer` arguments (``max_streams``, ...).
    """
    asyncio.run(_serve(host, port, on_ready, kwargs))


async def _serve(
    host: str, port: int, on_ready: Callable[[str], None] | None, kwargs: dict[str, object]
) -> None:
    server = EmbeddedServer(host=host, port=port, **kwargs)  # type: ignore[arg-type]
    stop = stop_event()
    bound = await server.start()
    try:
        if on_ready is not None:
            on_ready(f"{host}:{bound}")
        await stop.wait()
    finally:
        await server.stop(grace=5.0)
