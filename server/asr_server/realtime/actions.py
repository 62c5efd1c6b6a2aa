"""What the realtime session asks its I/O layer to do: the shared actions of
:mod:`asr_server.actions`, and its own :class:`Send` of a realtime event."""

from __future__ import annotations

from dataclasses import dataclass

from ..actions import CommonAction
from .events import AnyServerEvent

__all__ = ["Action", "Send"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``event`` to the client as a JSON text frame (``event.model_dump_json()``)."""

    event: AnyServerEvent


Action = Send | CommonAction
"""An action of the realtime session."""
