"""Whether a new session may start, the sessions that did, and those waiting for a place.

Every interface that opens sessions against Riva (the own WebSocket contract, and the
REST and realtime routes mounted beside it) asks :meth:`Admission.refusal` once the client
is authenticated (or waits with :meth:`Admission.wait_for_slot`), then holds its place with
:meth:`Admission.hold` for as long as the session runs. The two limits are the gateway's
own (``max_sessions``) and the backend's (:class:`~asr_server.capacity.BackendCapacity`,
configured or learned from Riva's RESOURCE_EXHAUSTED); sessions of every interface count
against both.

Past the limits a session is refused, unless the admission queue is on
(``queue_size``, issue 12): then up to ``queue_size`` sessions wait, first come first
served, for at most ``queue_timeout_seconds``. :class:`WaitQueue` is its state, without
I/O and with the clock passed in; :meth:`Admission.wait_for_slot` the asyncio layer. Only
the queue's head may take a place that frees, and while anyone waits a newcomer does not
pass them (:meth:`Admission.refusal` refuses it), so places go in arrival order.

The sessions held are also what a shutdown drains: each is a :class:`Drainable`; the
queue is emptied with :data:`SHUTTING_DOWN` (:meth:`Admission.close_queue`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from typing import Protocol

from asr.contract import ErrorCode

from .capacity import BackendCapacity
from .limits import Limits
from .metrics import GatewayMetrics

__all__ = [
    "Admission",
    "Drainable",
    "Refusal",
    "SHUTTING_DOWN",
    "Turn",
    "WaitQueue",
    "Waiter",
]


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
        shutting_down: Refused because the server is shutting down (REST: 503
            ``shutting_down``), not for want of a place.
    """

    code: ErrorCode
    message: str
    log: str
    shutting_down: bool = False


SHUTTING_DOWN = Refusal(
    ErrorCode.TOO_MANY_SESSIONS,
    "the server is shutting down; try again",
    "the server is shutting down: the queue is emptied",
    shutting_down=True,
)
"""What a queued session is told when the server shuts down (retryable: another replica,
or this one restarted, takes it)."""


# --- the queue, without I/O ----------------------------------------------------------


@dataclass(eq=False, slots=True)
class Waiter:
    """One place in the :class:`WaitQueue` (compared by identity).

    Attributes:
        joined: Clock reading when it joined.
        deadline: Clock reading when it stops waiting.
    """

    joined: float
    deadline: float


class Turn(Enum):
    """What a waiter does now (:meth:`WaitQueue.turn`)."""

    ADMITTED = "admitted"
    """It is first and a place is free: it leaves the queue and starts."""
    WAITING = "waiting"
    """It waits on."""
    TIMED_OUT = "timed_out"
    """Its ``deadline`` passed: it leaves the queue, refused."""


@dataclass(slots=True)
class WaitQueue:
    """Sessions waiting for a place, first come first served; no I/O, clock passed in.

    Attributes:
        size: Places in the queue; 0 turns it off (:meth:`join` refuses every session).
        timeout: Seconds a session waits at most.
    """

    size: int
    timeout: float
    _waiters: list[Waiter] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self._waiters)

    @property
    def waiters(self) -> list[Waiter]:
        """The waiters, first first."""
        return list(self._waiters)

    def join(self, now: float) -> Waiter | None:
        """A new place at the end; ``None`` when the queue is full (or off)."""
        if len(self._waiters) >= self.size:
            return None
        waiter = Waiter(joined=now, deadline=now + self.timeout)
        self._waiters.append(waiter)
        return waiter

    def leave(self, waiter: Waiter) -> None:
        """``waiter`` leaves (admitted, timed out, gone); those behind it move up."""
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def position(self, waiter: Waiter) -> int:
        """1 for the head, 2 for the next...; 0 once it left."""
        try:
            return self._waiters.index(waiter) + 1
        except ValueError:
            return 0

    def turn(self, waiter: Waiter, *, free: bool, now: float) -> Turn:
        """What ``waiter`` does now, when a place is ``free`` (the limits admit one more)
        or not. Only the head takes a free place, so none is taken out of turn."""
        if free and self.position(waiter) == 1:
            return Turn.ADMITTED
        if now >= waiter.deadline:
            return Turn.TIMED_OUT
        return Turn.WAITING


class Admission:
    """The gateway's session count and the backend's capacity.

    Args:
        limits: Where ``max_sessions``, ``backend_streams`` and the queue's
            ``queue_size`` and ``queue_timeout_seconds`` come from.
        metrics: ``asr_gateway_active_sessions`` follows :attr:`active`,
            ``asr_gateway_queued_sessions`` the queue.
    """

    def __init__(self, limits: Limits, metrics: GatewayMetrics) -> None:
        self.limits = limits
        self.capacity = BackendCapacity(limits.backend_streams)
        self.queue = WaitQueue(limits.queue_size, limits.queue_timeout_seconds)
        self._metrics = metrics
        metrics.max_sessions.set(limits.max_sessions)
        self._sessions: set[Drainable] = set()
        self._idle = asyncio.Event()
        self._idle.set()
        self._wakes: dict[Waiter, asyncio.Event] = {}
        self._queue_closed = False

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
        """``None`` when one more session may start now, else why not.

        While sessions wait in the queue a newcomer is refused too: a place that frees
        is theirs (``wait_for_slot`` queues the newcomer behind them instead).
        """
        if (refusal := self._limit(now)) is not None:
            return refusal
        if self.queue:
            return Refusal(
                ErrorCode.TOO_MANY_SESSIONS,
                "sessions are waiting for a free place; try again later",
                f"{len(self.queue)} sessions queued before it",
            )
        return None

    def _limit(self, now: float) -> Refusal | None:
        """Why the limits alone do not admit one more session now."""
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
        """Count ``session`` as running inside the ``with`` block (after :meth:`refusal`
        or :meth:`wait_for_slot`, before the next ``await``), in the ``interface``'s
        ``asr_gateway_active_sessions``."""
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
            self._wake_all()  # a place is free: the queue's head takes it

    async def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for every session to end; whether they all did."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._idle.wait()
        return self._idle.is_set()

    # -- the queue ----------------------------------------------------------------------

    async def wait_for_slot(
        self,
        interface: str,
        *,
        announce: Callable[[int, float], None] | None = None,
        gone: asyncio.Event | None = None,
    ) -> Refusal | None:
        """Wait in the queue until one more session may start: ``None`` then, else why
        not. Call :meth:`hold` before the next ``await``, or the place may be taken.

        With the queue off (``queue_size`` 0) or full, this is :meth:`refusal`, at once.

        Args:
            interface: The ``interface`` label of the queue's metrics.
            announce: Called with the waiter's position (1 is next) and the seconds it
                may still wait, on joining and whenever the position changes.
            gone: Set when the client went away: the waiter leaves the queue (and gets a
                refusal it has nobody to tell).
        """
        loop = asyncio.get_running_loop()
        refusal = self.refusal(loop.time())
        if refusal is None:
            return None
        waiter = None if self._queue_closed else self.queue.join(loop.time())
        if waiter is None:
            if self._queue_closed:
                return SHUTTING_DOWN
            if self.queue.size:
                full = f"; the queue's {self.queue.size} places are taken"
                return Refusal(refusal.code, refusal.message, refusal.log + full)
            return refusal
        metrics = self._metrics.interface(interface)
        metrics.queued_sessions.inc()
        self._wakes[waiter] = asyncio.Event()
        outcome = "left"  # also when the caller is cancelled
        try:
            outcome, refusal = await self._wait(waiter, announce, gone)
            return refusal
        finally:
            self.queue.leave(waiter)
            del self._wakes[waiter]
            metrics.queued_sessions.dec()
            metrics.queue_wait[outcome].observe(loop.time() - waiter.joined)
            self._wake_all()  # those behind move up (and the next may take a free place)

    async def _wait(
        self,
        waiter: Waiter,
        announce: Callable[[int, float], None] | None,
        gone: asyncio.Event | None,
    ) -> tuple[str, Refusal | None]:
        """Until the waiter leaves the queue: how (a ``QUEUE_OUTCOMES``) and the answer."""
        loop, wake, position = asyncio.get_running_loop(), self._wakes[waiter], 0
        while True:
            now = loop.time()
            if self._queue_closed:
                return "shutdown", SHUTTING_DOWN
            if gone is not None and gone.is_set():
                return "left", Refusal(
                    ErrorCode.TOO_MANY_SESSIONS, "", "the client went away while queued"
                )
            turn = self.queue.turn(waiter, free=self._limit(now) is None, now=now)
            if turn is Turn.ADMITTED:
                return "admitted", None
            if turn is Turn.TIMED_OUT:
                timeout = self.queue.timeout
                return "timed_out", Refusal(
                    ErrorCode.TOO_MANY_SESSIONS,
                    f"no place became free in {timeout:g} s in the queue; try again later",
                    f"waited {timeout:g} s in the queue",
                )
            if announce is not None and (moved := self.queue.position(waiter)) != position:
                position = moved
                announce(position, round(waiter.deadline - now, 3))
            wake.clear()
            # A learned backend capacity rises by itself: look again when it does.
            until = min(waiter.deadline, self.capacity.next_change(now) or math.inf)
            waits = [asyncio.ensure_future(wake.wait())]
            if gone is not None:
                waits.append(asyncio.ensure_future(gone.wait()))
            try:
                await asyncio.wait(
                    waits, timeout=max(0.0, until - now), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for task in waits:
                    task.cancel()

    def close_queue(self) -> None:
        """The server shuts down: every waiter leaves with :data:`SHUTTING_DOWN`, and no
        session queues from now on."""
        self._queue_closed = True
        self._wake_all()

    def _wake_all(self) -> None:
        for wake in self._wakes.values():
            wake.set()
