"""The recordings schema as SQLAlchemy Core tables (the migrations create the same).

Times are UTC; SQLite keeps them without a zone, so :func:`utc` puts it back on read.
Audio paths are relative to the data directory, so the directory can move.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

__all__ = ["finals", "jobs", "metadata", "sessions", "utc"]

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Time = sa.DateTime(timezone=True)

sessions = sa.Table(
    "recorded_sessions",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("key_id", sa.String(128), nullable=False),
    sa.Column("interface", sa.String(32), nullable=False),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("ended_at", Time, nullable=True),
    sa.Column("heartbeat_at", Time, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("replica", sa.String(255), nullable=False),
    sa.Column("recording_id", sa.String(64), nullable=False, unique=True),
    sa.Column("audio_path", sa.String(1024), nullable=False),
    sa.Column("sample_rate", sa.Integer, nullable=False),
    sa.Column("audio_format", sa.String(32), nullable=False),
    sa.Column("duration_seconds", sa.Float, nullable=False),
    sa.Column("enhance_on_end", sa.Boolean, nullable=False),
    sa.Column("enhancement_job_id", sa.String(64), nullable=True),
    sa.Index(None, "key_id", "created_at", "id"),
    sa.Index(None, "state", "replica"),
    sa.Index(None, "created_at"),
)

finals = sa.Table(
    "recorded_finals",
    metadata,
    sa.Column(
        "session_id",
        sa.String(64),
        sa.ForeignKey("recorded_sessions.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("received_at", Time, nullable=False),
    sa.Column("final", sa.JSON, nullable=False),
)

jobs = sa.Table(
    "recording_jobs",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column(
        "session_id",
        sa.String(64),
        sa.ForeignKey("recorded_sessions.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("key_id", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("error", sa.Text, nullable=True),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("run_after", Time, nullable=False),
    sa.Column("lease_owner", sa.String(255), nullable=True),
    sa.Column("lease_expires_at", Time, nullable=True),
    sa.Column("created_at", Time, nullable=False),
    sa.Column("updated_at", Time, nullable=False),
    sa.Index(None, "state", "run_after"),
    sa.Index(None, "session_id"),
)


def utc(value: datetime) -> datetime:
    """``value`` as an aware UTC time (SQLite returns naive ones)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
