"""Retention: which sessions are old enough to delete (pure), and the sweeper task.

A session's age runs from its end (``ended_at``), or from its start when it never ended.
A session still ``recording`` is never deleted, nor one whose job is queued or running
(it is deleted at a later sweep, once the job finished).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from .records import JobState, SessionState

__all__ = ["RetentionCandidate", "Sweeper", "expired_sessions", "retention_cutoff"]

logger = logging.getLogger("asr_server.recordings.retention")


@dataclass(frozen=True, slots=True)
class RetentionCandidate:
    """What retention needs to know of a session."""

    session_id: str
    state: SessionState
    created_at: datetime
    ended_at: datetime | None
    job_state: JobState | None = None


def retention_cutoff(now: datetime, retention_days: float) -> datetime:
    """Sessions that ended before this are expired."""
    return now - timedelta(days=retention_days)


def expired_sessions(
    candidates: Sequence[RetentionCandidate], *, now: datetime, retention_days: float
) -> list[str]:
    """The ids of the ``candidates`` to delete, in their order."""
    cutoff = retention_cutoff(now, retention_days)
    busy = (JobState.QUEUED, JobState.RUNNING)
    return [
        c.session_id
        for c in candidates
        if c.state is not SessionState.RECORDING
        and c.job_state not in busy
        and (c.ended_at or c.created_at) < cutoff
    ]


class Sweeper:
    """Calls ``sweep(now)`` every ``interval`` seconds, ``now`` from ``clock``.

    Args:
        sweep: Deletes what expired at ``now``; returns how many sessions it deleted.
        clock: The current UTC time.
        interval: Seconds between sweeps; the first runs at once.
    """

    def __init__(
        self,
        sweep: Callable[[datetime], Awaitable[int]],
        *,
        clock: Callable[[], datetime],
        interval: float,
    ) -> None:
        self._sweep = sweep
        self._clock = clock
        self._interval = interval

    async def run(self) -> None:
        """Sweep until cancelled; a failed sweep is logged and the next one tried."""
        while True:
            try:
                deleted = await self._sweep(self._clock())
                if deleted:
                    logger.info("retention deleted %d session(s)", deleted)
            except Exception:
                logger.exception("retention sweep failed")
            await asyncio.sleep(self._interval)
