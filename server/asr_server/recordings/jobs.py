"""The job state machine, without I/O: fields in, fields out, the clock passed in.

::

                claim                 complete
    queued ─────────────▶ running ─────────────▶ completed
      ▲                     │  │
      │ fail, attempts left │  │ fail, none left / lease expired, none left
      └─────────────────────┘  └──────────────────────────────▶ failed
                            ▲
                            │ lease expired, attempts left: claim again
                            └── running (another owner)

A claim takes a **lease** until ``now + lease_seconds``; the owner renews it while it
works. A worker that dies stops renewing, and once the lease has expired the job is
claimable again (the claim counts as an attempt). :mod:`.queue` applies these transitions
to rows, guarded by the row's version so that two claimers cannot both win.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime, timedelta

from .records import JobState

__all__ = [
    "JobFields",
    "JobPolicy",
    "LeaseLost",
    "abandon",
    "claim",
    "claimable",
    "complete",
    "exhausted",
    "fail",
    "renew",
]


class LeaseLost(Exception):
    """The caller no longer holds the job's lease (it expired and was claimed again, or
    the job is gone): its work must not be recorded."""


@dataclass(frozen=True, slots=True)
class JobPolicy:
    """How jobs are leased and retried.

    Attributes:
        lease_seconds: How long a claim holds without renewal.
        max_attempts: Claims before a job that keeps failing is failed.
        retry_seconds: Wait before the first retry; doubles with each attempt, to at most
            ``max_retry_seconds``.
        max_retry_seconds: The longest wait between attempts.
    """

    lease_seconds: float = 120.0
    max_attempts: int = 3
    retry_seconds: float = 10.0
    max_retry_seconds: float = 600.0

    def lease_until(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.lease_seconds)

    def retry_after(self, attempts: int, now: datetime) -> datetime:
        delay = min(self.retry_seconds * 2 ** max(attempts - 1, 0), self.max_retry_seconds)
        return now + timedelta(seconds=delay)


@dataclass(frozen=True, slots=True)
class JobFields:
    """The columns of a job the state machine reads and writes."""

    state: JobState
    attempts: int
    run_after: datetime
    lease_owner: str | None = None
    lease_expires_at: datetime | None = None
    error: str | None = None


def _lease_expired(job: JobFields, now: datetime) -> bool:
    return job.state is JobState.RUNNING and (
        job.lease_expires_at is None or job.lease_expires_at <= now
    )


def claimable(job: JobFields, now: datetime, policy: JobPolicy) -> bool:
    """Whether a worker may claim ``job`` now: queued and due, or running on an expired
    lease with attempts left."""
    if job.state is JobState.QUEUED:
        return job.run_after <= now
    return _lease_expired(job, now) and job.attempts < policy.max_attempts


def exhausted(job: JobFields, now: datetime, policy: JobPolicy) -> bool:
    """Whether ``job`` ran on a lease that expired and has no attempts left."""
    return _lease_expired(job, now) and job.attempts >= policy.max_attempts


def claim(job: JobFields, now: datetime, owner: str, policy: JobPolicy) -> JobFields:
    """``job`` claimed by ``owner``: running, one more attempt, leased.

    Raises:
        ValueError: ``job`` is not :func:`claimable`.
    """
    if not claimable(job, now, policy):
        raise ValueError(f"a {job.state} job is not claimable now")
    return dataclasses.replace(
        job,
        state=JobState.RUNNING,
        attempts=job.attempts + 1,
        lease_owner=owner,
        lease_expires_at=policy.lease_until(now),
    )


def _check_owner(job: JobFields, owner: str, now: datetime) -> None:
    if job.state is not JobState.RUNNING or job.lease_owner != owner:
        raise LeaseLost(f"{owner} does not hold the lease")
    if job.lease_expires_at is not None and job.lease_expires_at <= now:
        raise LeaseLost(f"the lease of {owner} expired")


def renew(job: JobFields, now: datetime, owner: str, policy: JobPolicy) -> JobFields:
    """``job`` with its lease extended.

    Raises:
        LeaseLost: ``owner`` does not hold a live lease.
    """
    _check_owner(job, owner, now)
    return dataclasses.replace(job, lease_expires_at=policy.lease_until(now))


def complete(job: JobFields, now: datetime, owner: str) -> JobFields:
    """``job`` done.

    Raises:
        LeaseLost: ``owner`` does not hold a live lease.
    """
    _check_owner(job, owner, now)
    return dataclasses.replace(
        job, state=JobState.COMPLETED, lease_owner=None, lease_expires_at=None, error=None
    )


def fail(job: JobFields, now: datetime, owner: str, error: str, policy: JobPolicy) -> JobFields:
    """``job`` after a failed attempt: queued again later, or failed for good.

    Raises:
        LeaseLost: ``owner`` does not hold a live lease.
    """
    _check_owner(job, owner, now)
    if job.attempts >= policy.max_attempts:
        state, run_after = JobState.FAILED, job.run_after
    else:
        state, run_after = JobState.QUEUED, policy.retry_after(job.attempts, now)
    return dataclasses.replace(
        job,
        state=state,
        run_after=run_after,
        lease_owner=None,
        lease_expires_at=None,
        error=error,
    )


def abandon(job: JobFields, now: datetime, policy: JobPolicy) -> JobFields:
    """An :func:`exhausted` job, failed: its workers kept dying.

    Raises:
        ValueError: ``job`` is not exhausted.
    """
    if not exhausted(job, now, policy):
        raise ValueError("only a job whose last lease expired can be abandoned")
    return dataclasses.replace(
        job,
        state=JobState.FAILED,
        lease_owner=None,
        lease_expires_at=None,
        error=f"the worker stopped renewing its lease, {job.attempts} attempt(s)",
    )
