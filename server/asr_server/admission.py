"""Whether a new session may start, and the sessions that did; no I/O, clock passed in.

Every interface that opens sessions against Riva (the own WebSocket contract, and the
REST and realtime routes mounted beside it) asks :meth:`Admission.refusal` once the client
is authenticated, then holds its place with :meth:`Admission.hold` for as long as the
session runs. The two limits are the gateway's own (``max_sessions``) and the backend's
(:class:`~asr_server.capacity.BackendCapacity`, configured or learned from Riva's
RESOURCE_EXHAUSTED); sessions of every interface count against both.

The sessions held are also what a shutdown drains: each is a :class:`Drainable`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from asr.contract import ErrorCode

from .capacity import BackendCapacity
from .limits import Limits
from .metrics import GatewayMetrics

__all__ = ["Admission", "Drainable", "Refusal"]


class Drainable(Protocol):
    """A running session as the server's shutdown sees it."""

    @property
    def riva_streams(self) -> int:
        """Riva streams the session holds now."""
        ...

    def shutdown(self, timeout: float) -> None:
        """Stop taking audio, deliver what is owed within ``timeout`` s, close (1001)."""
        ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a session may not start.

    Attributes:
        code: The contract's error code (``too_many_sessions``; retryable).
        message: Said to the client.
        log: Said to the operator.
    """

    code: ErrorCode
    message: str
    log: str


class Admission:
    """The gateway's session count and the backend's capacity.

    Args:
        limits: Where ``max_sessions`` and ``backend_streams`` come from.
        metrics: ``asr_gateway_active_sessions`` follows :attr:`active`.
    """

    def __init__(self, limits: Limits, metrics: GatewayMetrics) -> None:
        self.limits = limits
        self.capacity = BackendCapacity(limits.backend_streams)
        self._metrics = metrics
        metrics.max_sessions.set(limits.max_sessions)
        self._sessions: set[Drainable] = set()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def active(self) -> int:
        """Sessions running now, all interfaces together."""
        return len(self._sessions)

    @property
    def sessions(self) -> list[Drainable]:
        """The sessions running now."""
        return list(self._sessions)

    @property
    def riva_streams(self) -> int:
        """Riva streams the sessions hold now."""
        return sum(session.riva_streams for session in self._sessions)

    def refusal(self, now: float) -> Refusal | None:
        """``None`` when one more session may start now, else why not."""
        limit = self.limits.max_sessions
        if self.active >= limit:
            return Refusal(
                ErrorCode.TOO_MANY_SESSIONS,
                f"the server is at its limit of {limit} sessions; try again later",
                f"{self.active} sessions already open",
            )
        if not self.capacity.admits(self.active, now):
            backend = self.capacity.limit(now)
            return Refusal(
                ErrorCode.TOO_MANY_SESSIONS,
                f"the speech backend is at its capacity of {backend} streams; try again later",
                f"the backend takes {backend} streams",
            )
        return None

    def backend_exhausted(self, now: float) -> None:
        """Riva refused a stream as RESOURCE_EXHAUSTED with the streams open now."""
        self.capacity.exhausted(self.riva_streams, now)

    @contextlib.contextmanager
    def hold(self, session: Drainable, interface: str = "websocket") -> Iterator[None]:
        """Count ``session`` as running inside the ``with`` block (after :meth:`refusal`),
        in the ``interface``'s ``asr_gateway_active_sessions``."""
        active = self._metrics.interface(interface).active_sessions
        self._sessions.add(session)
        active.inc()
        self._idle.clear()
        try:
            yield
        finally:
            self._sessions.discard(session)
            active.dec()
            if not self._sessions:
                self._idle.set()

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every session to end; whether they all did."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        return self._idle.is_set()
