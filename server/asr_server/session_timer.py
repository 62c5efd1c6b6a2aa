"""The timer of a session's next deadline, one loop timer for many inputs.

A session's deadline moves with nearly every input (the idle timeout after each frame,
the stall while an answer is owed), mostly later. A timeout around every wait for the
next input would arm and cancel a loop timer per frame; this timer stays armed while the
deadline only moves later, and when it fires before a deadline that moved it re-arms
itself at the new one instead of expiring. It is armed again early only when the deadline
comes earlier than it.

An expiry is put into the session's inbox (behind what came in before it) as an
:class:`Expired`; the session loop asks :meth:`SessionTimer.passed` whether it still
holds, since inputs processed before it may have moved the deadline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Expired", "SessionTimer"]


@dataclass(frozen=True, slots=True)
class Expired:
    """The timer fired at the deadline ``at`` (a loop time)."""

    at: float


class SessionTimer:
    """Calls ``expired`` once the earliest of ``deadline()`` has passed.

    Args:
        loop: The session's event loop (its clock is the deadlines').
        deadline: The session's next deadline now, ``None`` when it has none.
        expired: Receives the :class:`Expired` (puts it into the inbox).
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deadline: Callable[[], float | None],
        expired: Callable[[Expired], None],
    ) -> None:
        self._loop = loop
        self._deadline = deadline
        self._expired = expired
        self._handle: asyncio.TimerHandle | None = None
        self._at = 0.0
        self._queued = False

    def arm(self) -> None:
        """Before waiting for the next input: make sure the timer fires by the deadline."""
        if self._queued:
            return  # an expiry is on its way; it is checked when it arrives
        deadline = self._deadline()
        if deadline is not None and (self._handle is None or deadline < self._at):
            self._set(deadline)

    def passed(self, expiry: Expired) -> bool:
        """Whether the deadline of ``expiry``, taken out of the inbox, still holds (it
        did not move later meanwhile): then the session ticks."""
        self._queued = False
        deadline = self._deadline()
        return deadline is not None and deadline <= expiry.at

    def cancel(self) -> None:
        """The session ended."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _set(self, deadline: float) -> None:
        self.cancel()
        self._at = deadline
        self._handle = self._loop.call_at(deadline, self._fired)

    def _fired(self) -> None:
        self._handle = None
        deadline = self._deadline()
        if deadline is None:
            return
        if deadline > self._at:
            self._set(deadline)
            return
        self._queued = True
        self._expired(Expired(self._at))
