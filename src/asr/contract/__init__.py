"""The WebSocket contract of the gateway: its messages and codes, one definition for the
server that speaks it and the clients that read it. ``docs/websocket-api.md`` and its JSON
Schema are generated from these modules (``python -m asr_server.schema``)."""

from __future__ import annotations

from . import codes, messages
from .codes import *  # noqa: F403  (the package is their public home)
from .messages import *  # noqa: F403

__all__: list[str] = []
__all__ += codes.__all__
__all__ += messages.__all__
__all__.sort()
