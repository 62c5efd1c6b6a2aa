"""Jobs in the database: claim with a lease, renew, complete, fail.

The claim is the one piece of scheduling here: ``SELECT ... FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so replicas polling together each take a different row without waiting on one
another, then an ``UPDATE`` guarded by the row's ``version``, so that a claim counts only
if nobody changed the row since it was read (on SQLite, where ``FOR UPDATE`` does not
exist, the guard and ``BEGIN IMMEDIATE`` do it alone). Every later write by the worker is
guarded by its lease the same way: a worker whose lease expired and whose job was claimed
again cannot overwrite the new attempt's result. The transitions are :mod:`.jobs`'.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from . import jobs as machine
from .jobs import JobFields, JobPolicy, LeaseLost
from .records import JobRecord, JobState
from .tables import jobs, utc

__all__ = ["JobQueue"]

_CLAIM_BATCH = 8


def _fields(m: Any) -> JobFields:
    return JobFields(
        state=JobState(m["state"]),
        attempts=m["attempts"],
        run_after=utc(m["run_after"]),
        lease_owner=m["lease_owner"],
        lease_expires_at=utc(m["lease_expires_at"]) if m["lease_expires_at"] else None,
        error=m["error"],
    )


def _record(m: Any) -> JobRecord:
    return JobRecord(
        id=m["id"],
        kind=m["kind"],
        session_id=m["session_id"],
        key_id=m["key_id"],
        state=JobState(m["state"]),
        attempts=m["attempts"],
        error=m["error"],
        result=m["result"],
        created_at=utc(m["created_at"]),
        updated_at=utc(m["updated_at"]),
    )


class JobQueue:
    """The jobs table of ``engine``, under ``policy``, at the times ``clock`` gives."""

    def __init__(
        self, engine: AsyncEngine, policy: JobPolicy, *, clock: Callable[[], datetime]
    ) -> None:
        self.engine = engine
        self.policy = policy
        self.clock = clock

    async def get(self, key_id: str, job_id: str) -> JobRecord | None:
        """``key_id``'s job ``job_id``, or ``None`` (also for another key's job)."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    jobs.select().where(jobs.c.id == job_id, jobs.c.key_id == key_id)
                )
            ).one_or_none()
        return None if row is None else _record(row._mapping)

    async def claim(self, owner: str) -> JobRecord | None:
        """Claim the oldest claimable job for ``owner``, or ``None`` if there is none.

        Jobs whose last lease expired with no attempts left are failed on the way.
        """
        now = self.clock()
        due = sa.or_(
            sa.and_(jobs.c.state == JobState.QUEUED.value, jobs.c.run_after <= now),
            sa.and_(jobs.c.state == JobState.RUNNING.value, jobs.c.lease_expires_at <= now),
        )
        query = (
            jobs.select()
            .where(due)
            .order_by(jobs.c.created_at, jobs.c.id)
            .limit(_CLAIM_BATCH)
            .with_for_update(skip_locked=True)
        )
        async with self.engine.begin() as conn:
            for row in (await conn.execute(query)).all():
                m = row._mapping
                fields = _fields(m)
                if machine.exhausted(fields, now, self.policy):
                    await self._write(conn, m, machine.abandon(fields, now, self.policy), now)
                    continue
                if not machine.claimable(fields, now, self.policy):
                    continue
                claimed = machine.claim(fields, now, owner, self.policy)
                if await self._write(conn, m, claimed, now):
                    return _record(
                        {**m, **_values(claimed), "updated_at": now, "version": m["version"] + 1}
                    )
        return None

    async def renew(self, job_id: str, owner: str) -> None:
        """Extend ``owner``'s lease of ``job_id``.

        Raises:
            LeaseLost: ``owner`` no longer holds it.
        """
        await self._transition(job_id, lambda f, now: machine.renew(f, now, owner, self.policy))

    async def complete(self, job_id: str, owner: str, result: dict[str, Any]) -> None:
        """Record ``result`` and mark the job completed.

        Raises:
            LeaseLost: ``owner`` no longer holds the lease; nothing is written.
        """
        await self._transition(
            job_id, lambda f, now: machine.complete(f, now, owner), result=result
        )

    async def fail(self, job_id: str, owner: str, error: str) -> JobState:
        """Record a failed attempt: queued for a retry, or failed.

        Returns:
            The job's state after it.

        Raises:
            LeaseLost: ``owner`` no longer holds the lease; nothing is written.
        """
        return await self._transition(
            job_id, lambda f, now: machine.fail(f, now, owner, error, self.policy)
        )

    async def _transition(
        self,
        job_id: str,
        step: Callable[[JobFields, datetime], JobFields],
        *,
        result: dict[str, Any] | None = None,
    ) -> JobState:
        now = self.clock()
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(jobs.select().where(jobs.c.id == job_id).with_for_update())
            ).one_or_none()
            if row is None:
                raise LeaseLost(f"job {job_id} is gone")
            new = step(_fields(row._mapping), now)
            if not await self._write(conn, row._mapping, new, now, result=result):
                raise LeaseLost(f"job {job_id} changed meanwhile")
            return new.state

    async def _write(
        self,
        conn: AsyncConnection,
        old: Any,
        new: JobFields,
        now: datetime,
        *,
        result: dict[str, Any] | None = None,
    ) -> bool:
        values = _values(new) | {"updated_at": now, "version": old["version"] + 1}
        if result is not None:
            values["result"] = result
        outcome = await conn.execute(
            jobs.update()
            .where(jobs.c.id == old["id"], jobs.c.version == old["version"])
            .values(values)
        )
        return bool(outcome.rowcount == 1)


def _values(fields: JobFields) -> dict[str, Any]:
    return {
        "state": fields.state.value,
        "attempts": fields.attempts,
        "run_after": fields.run_after,
        "lease_owner": fields.lease_owner,
        "lease_expires_at": fields.lease_expires_at,
        "error": fields.error,
    }
