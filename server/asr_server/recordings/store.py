"""Sessions in the database: create, append finals, finish, read, list, delete.

Every read and delete takes the caller's ``key_id`` into its ``WHERE``: another key's
session is indistinguishable from one that does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from asr.events import Final

from .records import JobState, SessionPage, SessionRecord, SessionState
from .retention import RetentionCandidate
from .tables import finals, jobs, sessions, utc

__all__ = ["AUDIO_FORMAT", "InvalidCursor", "OpenSession", "SessionStore", "new_job_row"]

AUDIO_FORMAT = "wav/pcm_s16le"
MAX_PAGE = 100


class InvalidCursor(ValueError):
    """A listing cursor this store did not hand out."""


@dataclass(frozen=True, slots=True)
class OpenSession:
    """A session left ``recording``: its id and audio file."""

    id: str
    audio_path: Path
    sample_rate: int


def new_job_row(session_id: str, key_id: str, kind: str, now: datetime) -> dict[str, Any]:
    """The row of a new queued job."""
    return {
        "id": f"job_{uuid.uuid4().hex}",
        "kind": kind,
        "session_id": session_id,
        "key_id": key_id,
        "state": JobState.QUEUED.value,
        "attempts": 0,
        "version": 0,
        "run_after": now,
        "created_at": now,
        "updated_at": now,
    }


def _encode_cursor(created_at: datetime, session_id: str) -> str:
    raw = json.dumps([utc(created_at).isoformat(), session_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        when, session_id = json.loads(raw)
        return utc(datetime.fromisoformat(when)), str(session_id)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise InvalidCursor(f"not a cursor of this listing: {cursor!r}") from exc


class SessionStore:
    """Recorded sessions in ``engine``'s database, audio under ``data_dir``."""

    def __init__(self, engine: AsyncEngine, data_dir: Path) -> None:
        self.engine = engine
        self.data_dir = data_dir.resolve()

    def _record(self, row: sa.Row[Any], final_rows: Sequence[Any] = ()) -> SessionRecord:
        m = row._mapping
        return SessionRecord(
            id=m["id"],
            key_id=m["key_id"],
            interface=m["interface"],
            created_at=utc(m["created_at"]),
            ended_at=utc(m["ended_at"]) if m["ended_at"] is not None else None,
            state=SessionState(m["state"]),
            recording_id=m["recording_id"],
            audio_path=str(self.data_dir / m["audio_path"]),
            sample_rate=m["sample_rate"],
            audio_format=m["audio_format"],
            duration_seconds=m["duration_seconds"],
            finals=tuple(Final.model_validate(f) for f in final_rows),
            enhancement_job_id=m["enhancement_job_id"],
        )

    async def create(
        self,
        *,
        session_id: str,
        key_id: str,
        interface: str,
        sample_rate: int,
        replica: str,
        enhance_on_end: bool,
        now: datetime,
    ) -> SessionRecord:
        """Insert a ``recording`` session; its audio file is the caller's to create."""
        recording_id = f"rec_{uuid.uuid4().hex}"
        row = {
            "id": session_id,
            "key_id": key_id,
            "interface": interface,
            "created_at": now,
            "heartbeat_at": now,
            "state": SessionState.RECORDING.value,
            "replica": replica,
            "recording_id": recording_id,
            "audio_path": f"audio/{now:%Y/%m/%d}/{recording_id}.wav",
            "sample_rate": sample_rate,
            "audio_format": AUDIO_FORMAT,
            "duration_seconds": 0.0,
            "enhance_on_end": enhance_on_end,
        }
        async with self.engine.begin() as conn:
            await conn.execute(sessions.insert().values(row))
            result = await conn.execute(sessions.select().where(sessions.c.id == session_id))
            return self._record(result.one())

    async def add_final(self, session_id: str, seq: int, final: Final, now: datetime) -> None:
        """Store the ``seq``-th real-time final of a session."""
        async with self.engine.begin() as conn:
            await conn.execute(
                finals.insert().values(
                    session_id=session_id,
                    seq=seq,
                    received_at=now,
                    final=final.model_dump(mode="json"),
                )
            )

    async def finish(
        self,
        session_id: str,
        *,
        state: SessionState,
        duration_seconds: float,
        now: datetime,
        enqueue: str | None = None,
    ) -> str | None:
        """End a session; with ``enqueue`` (a job kind) queue a job on it, atomically.

        Returns:
            The queued job's id, if one was.
        """
        values: dict[str, Any] = {
            "state": state.value,
            "ended_at": now,
            "heartbeat_at": now,
            "duration_seconds": duration_seconds,
        }
        async with self.engine.begin() as conn:
            key_id = await conn.scalar(
                sa.select(sessions.c.key_id).where(sessions.c.id == session_id)
            )
            if key_id is None:
                return None  # deleted while it was recording
            job_id = None
            if enqueue is not None:
                job = new_job_row(session_id, key_id, enqueue, now)
                await conn.execute(jobs.insert().values(job))
                job_id = values["enhancement_job_id"] = job["id"]
            await conn.execute(sessions.update().where(sessions.c.id == session_id).values(values))
            return job_id

    async def get(self, key_id: str, session_id: str) -> SessionRecord | None:
        """``key_id``'s session ``session_id`` with its finals, or ``None``."""
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    sessions.select().where(
                        sessions.c.id == session_id, sessions.c.key_id == key_id
                    )
                )
            ).one_or_none()
            if row is None:
                return None
            final_rows = await conn.scalars(
                sa.select(finals.c.final)
                .where(finals.c.session_id == session_id)
                .order_by(finals.c.seq)
            )
            return self._record(row, final_rows.all())

    async def list_page(
        self, key_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        """``key_id``'s sessions, newest first, ``limit`` (at most 100) a page.

        Raises:
            InvalidCursor: ``cursor`` is not one this listing handed out.
        """
        limit = max(1, min(limit, MAX_PAGE))
        query = sessions.select().where(sessions.c.key_id == key_id)
        if cursor is not None:
            created_at, last_id = _decode_cursor(cursor)
            query = query.where(
                sa.or_(
                    sessions.c.created_at < created_at,
                    sa.and_(sessions.c.created_at == created_at, sessions.c.id < last_id),
                )
            )
        query = query.order_by(sessions.c.created_at.desc(), sessions.c.id.desc())
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query.limit(limit + 1))).all()
        page = tuple(self._record(row) for row in rows[:limit])
        more = len(rows) > limit
        last = page[-1] if page else None
        next_cursor = _encode_cursor(last.created_at, last.id) if more and last else None
        return SessionPage(page, next_cursor)

    async def delete(self, key_id: str, session_id: str) -> bool:
        """Delete ``key_id``'s session, its finals, jobs and audio file.

        Returns:
            Whether there was such a session.
        """
        async with self.engine.begin() as conn:
            path = await conn.scalar(
                sa.select(sessions.c.audio_path).where(
                    sessions.c.id == session_id, sessions.c.key_id == key_id
                )
            )
            if path is None:
                return False
            await _delete_rows(conn, [session_id])
        (self.data_dir / path).unlink(missing_ok=True)
        return True

    async def heartbeat(self, session_ids: Sequence[str], now: datetime) -> None:
        """Mark sessions this replica is still recording as alive."""
        if session_ids:
            async with self.engine.begin() as conn:
                await conn.execute(
                    sessions.update().where(sessions.c.id.in_(session_ids)).values(heartbeat_at=now)
                )

    async def orphans(self, *, replica: str, stale_before: datetime) -> list[OpenSession]:
        """Sessions still ``recording`` that no live gateway writes: this replica's (it
        just started, so its old sessions are dead) and any whose heartbeat is stale."""
        query = sa.select(sessions.c.id, sessions.c.audio_path, sessions.c.sample_rate).where(
            sessions.c.state == SessionState.RECORDING.value,
            sa.or_(sessions.c.replica == replica, sessions.c.heartbeat_at < stale_before),
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [OpenSession(r.id, self.data_dir / r.audio_path, r.sample_rate) for r in rows]

    async def retention_candidates(self, cutoff: datetime) -> list[RetentionCandidate]:
        """Sessions started before ``cutoff`` (none that started later can be expired)."""
        query = (
            sa.select(
                sessions.c.id,
                sessions.c.state,
                sessions.c.created_at,
                sessions.c.ended_at,
                jobs.c.state.label("job_state"),
            )
            .select_from(sessions.outerjoin(jobs, jobs.c.id == sessions.c.enhancement_job_id))
            .where(sessions.c.created_at < cutoff)
            .order_by(sessions.c.created_at)
            .limit(1000)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            RetentionCandidate(
                session_id=r.id,
                state=SessionState(r.state),
                created_at=utc(r.created_at),
                ended_at=utc(r.ended_at) if r.ended_at is not None else None,
                job_state=JobState(r.job_state) if r.job_state is not None else None,
            )
            for r in rows
        ]

    async def delete_many(self, session_ids: Sequence[str]) -> int:
        """Delete sessions whoever owns them (retention), with their audio."""
        if not session_ids:
            return 0
        async with self.engine.begin() as conn:
            paths = (
                await conn.scalars(
                    sa.select(sessions.c.audio_path).where(sessions.c.id.in_(session_ids))
                )
            ).all()
            await _delete_rows(conn, session_ids)
        for path in paths:
            (self.data_dir / path).unlink(missing_ok=True)
        return len(paths)


async def _delete_rows(conn: AsyncConnection, session_ids: Sequence[str]) -> None:
    # Explicit rather than left to ON DELETE CASCADE: a SQLite connection opened without
    # PRAGMA foreign_keys would leave the finals and jobs behind.
    await conn.execute(finals.delete().where(finals.c.session_id.in_(session_ids)))
    await conn.execute(jobs.delete().where(jobs.c.session_id.in_(session_ids)))
    await conn.execute(sessions.delete().where(sessions.c.id.in_(session_ids)))
