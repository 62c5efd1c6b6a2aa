"""WebSocket gateway in front of Riva ASR: the JSON contract, the session protocol and the
ASGI application (FastAPI on uvicorn) that relays browser or app audio to Riva.

::

    from asr_server import GatewayServer, ServerSettings

    async with GatewayServer(ServerSettings(port=8443)) as server:   # RIVA_* for Riva
        print(server.url)

The contract is documented in ``docs/websocket-api.md``; its JSON Schema is generated
from :mod:`asr.contract` by :mod:`asr_server.schema`.
"""

from __future__ import annotations

from asr.extras import require_extra

require_extra("server", "the WebSocket gateway")


from .app import STREAM_PATH, GatewayServer, run, serve_forever
from .certs import write_self_signed
from .limits import Limits
from .protocol import Session
from .settings import ServerSettings

__all__ = [
    "GatewayServer",
    "Limits",
    "STREAM_PATH",
    "ServerSettings",
    "Session",
    "run",
    "serve_forever",
    "write_self_signed",
]
