"""What every route module of the gateway shares, on ``app.state.gateway``.

A route added beside the own WebSocket contract (a REST transcription route, NVIDIA's
realtime API) takes the :class:`Gateway` with ``Depends(gateway_of)`` and finds there the
settings, the one backend client (Riva's or Dynamo's), the metrics, the authenticator and
the admission::

    @router.post("/v1/...")
    async def route(request: Request, gw: GatewayDep) -> ...:
        decision = check_credentials(request, gw)  # asr_server.credentials
        refusal = gw.admission.refusal(asyncio.get_running_loop().time())
        with gw.admission.hold(session):
            ... gw.client.recognize(...) ...
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from asr.backend import SpeechBackend
from asr.settings import RivaSettings

from .admission import Admission
from .auth import Authenticator
from .metrics import GatewayMetrics
from .recordings import Recordings
from .settings import ServerSettings
from .tracing import Tracing

__all__ = ["ANONYMOUS", "Gateway", "GatewayDep", "client_address", "gateway_of", "owner_of"]

logger = logging.getLogger("asr.server")

ANONYMOUS = "anonymous"
"""Owner of what clients create on a server without API keys."""


@dataclass
class Gateway:
    """The gateway's shared parts (one per :class:`~asr_server.app.GatewayServer`).

    Attributes:
        settings: The server's settings (``ASR_SERVER_*``).
        riva_settings: How Riva is reached (``RIVA_*``).
        client: The backend's client every session shares (open while the server runs):
            Riva's or Dynamo's, as ``settings.backend`` says.
        metrics: The Prometheus collectors (``/metrics``).
        tracing: OpenTelemetry spans per session (a no-op when off).
        auth: API keys, tokens and the failure back-off, shared by all routes.
        admission: Session count and backend capacity, shared by all interfaces; also
            what a shutdown drains.
        recordings: Recorded sessions and their jobs, open while the server runs;
            ``None`` when the recording policy is off.
    """

    settings: ServerSettings
    riva_settings: RivaSettings
    client: SpeechBackend
    metrics: GatewayMetrics
    tracing: Tracing
    auth: Authenticator
    admission: Admission
    recordings: Recordings | None = None
    _noticed: set[str] = field(default_factory=set)

    def notice_once(self, key: str, message: str) -> None:
        """Log ``message`` at WARNING the first time ``key`` comes up in this server."""
        if key not in self._noticed:
            self._noticed.add(key)
            logger.warning(message)


def gateway_of(connection: HTTPConnection) -> Gateway:
    """The :class:`Gateway` of the app serving ``connection`` (a FastAPI dependency, for
    HTTP and WebSocket routes alike)."""
    gateway: Gateway = connection.app.state.gateway
    return gateway


def owner_of(key_id: str | None) -> str:
    """Who owns a session, its recording and jobs: the fingerprint of the API key that
    created them (``Decision.key_id``), or :data:`ANONYMOUS` without API keys."""
    return key_id if key_id is not None else ANONYMOUS


def client_address(connection: HTTPConnection) -> str:
    """The client's IP address (the unit of the authentication back-off)."""
    return connection.client.host if connection.client is not None else "unknown"


GatewayDep = Annotated[Gateway, Depends(gateway_of)]
"""A route parameter annotated so: FastAPI passes the :class:`Gateway` (HTTP and WebSocket)."""
