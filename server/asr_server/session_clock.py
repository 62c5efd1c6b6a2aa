"""The timers of a streaming session, without I/O: one definition for every interface.

:class:`~asr_server.protocol.Session` (the own contract) and
:class:`~asr_server.realtime.RealtimeSession` (NIM's realtime API) each end a session at
the same four deadlines, in this order when several have passed:

1. the drain after a server shutdown (:meth:`SessionClock.shutdown`'s ``timeout``);
2. a stalled backend: no progress for ``final_timeout_seconds`` while it owes an answer
   (:class:`~asr_server.stall.StallWatch`, :attr:`SessionClock.stall`);
3. the session's length, ``max_session_seconds`` from its start;
4. the idle timeout, ``idle_timeout_seconds`` without a client message, counted only
   while the session is open and its client may send (the caller says when).

:meth:`SessionClock.expired` says which one has passed and :meth:`SessionClock.error` the
code and message it ends the session with; each session sends them in its own API's
error event (the close code is the code's in :data:`asr.contract.ERRORS`). Plain data,
the clock passed in.
"""

from __future__ import annotations

from enum import Enum

from asr.contract import ErrorCode

from .limits import Limits
from .stall import StallWatch

__all__ = ["Expiry", "SessionClock"]


class Expiry(Enum):
    """A deadline that has passed, in the order :meth:`SessionClock.expired` checks them."""

    SHUTDOWN = "shutdown"
    """The drain after a shutdown is over: close with 1001, no error."""
    STALLED = "stalled"
    """The backend showed no progress while it owed an answer: ``backend_unavailable``."""
    SESSION_TOO_LONG = "session_too_long"
    """``max_session_seconds`` since the start."""
    IDLE = "idle"
    """``idle_timeout_seconds`` since the client's last message."""


class SessionClock:
    """One session's deadlines.

    Args:
        limits: The server's limits (``max_session_seconds``, ``idle_timeout_seconds``,
            ``final_timeout_seconds``).
        now: Clock reading (seconds, monotonic) at the session's start.
    """

    def __init__(self, limits: Limits, now: float) -> None:
        self.limits = limits
        self.started = now
        self.last_activity = now
        """Clock reading of the client's last message."""
        self.shutdown_at: float | None = None
        """When the drain after a shutdown ends; ``None`` without a shutdown."""
        self.stall = StallWatch(limits.final_timeout_seconds)
        """Whether the backend owes an answer, and since when it has shown no progress."""

    def restart(self, now: float) -> None:
        """The session starts at ``now`` after all (it waited in the admission queue)."""
        self.started = self.last_activity = now

    def activity(self, now: float) -> None:
        """The client sent something (or was held, which is not idling)."""
        self.last_activity = now

    def shutdown(self, now: float, timeout: float) -> None:
        """The server is shutting down: the session may drain for ``timeout`` seconds."""
        self.shutdown_at = now + timeout

    def expired(self, now: float, *, idle_counts: bool) -> Expiry | None:
        """The first deadline passed at ``now``, or ``None``.

        Args:
            now: Clock reading.
            idle_counts: Whether the idle timeout applies now (an open session whose
                client is not held by back-pressure).
        """
        if self.shutdown_at is not None and now >= self.shutdown_at:
            return Expiry.SHUTDOWN
        if (stall := self.stall.deadline()) is not None and now >= stall:
            return Expiry.STALLED
        if now >= self.started + self.limits.max_session_seconds:
            return Expiry.SESSION_TOO_LONG
        if idle_counts and now >= self.last_activity + self.limits.idle_timeout_seconds:
            return Expiry.IDLE
        return None

    def deadline(self, *, idle_counts: bool) -> float:
        """When the next of the session's own deadlines (all but the stall, which is
        :meth:`backend_deadline`) passes.

        Args:
            idle_counts: As for :meth:`expired`.
        """
        deadline = self.started + self.limits.max_session_seconds
        if idle_counts:
            deadline = min(deadline, self.last_activity + self.limits.idle_timeout_seconds)
        if self.shutdown_at is not None:
            deadline = min(deadline, self.shutdown_at)
        return deadline

    def error(self, expiry: Expiry) -> tuple[ErrorCode, str]:
        """The code and message of the error that ends a session at ``expiry`` (not
        :attr:`Expiry.SHUTDOWN`, which closes without one)."""
        limits = self.limits
        if expiry is Expiry.STALLED:
            return ErrorCode.BACKEND_UNAVAILABLE, (
                f"speech recognition backend: no progress for {limits.final_timeout_seconds:g} "
                "s while an answer was owed (stalled)"
            )
        if expiry is Expiry.SESSION_TOO_LONG:
            return ErrorCode.SESSION_TOO_LONG, (
                f"session reached its limit of {limits.max_session_seconds:g} s"
            )
        if expiry is Expiry.IDLE:
            return ErrorCode.IDLE_TIMEOUT, f"no message for {limits.idle_timeout_seconds:g} s"
        raise ValueError(f"{expiry} ends a session without an error")

    def backend_deadline(self) -> float | None:
        """When the backend's overdue answer is a stall; ``None`` when none is owed."""
        return self.stall.deadline()
