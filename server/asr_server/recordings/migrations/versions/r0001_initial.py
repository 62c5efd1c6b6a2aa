"""Recorded sessions, their finals and jobs.

Revision ID: 0001
Revises:
Create Date: 2026-05-20
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

Time = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recorded_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(128), nullable=False),
        sa.Column("interface", sa.String(32), nullable=False),
        sa.Column("created_at", Time, nullable=False),
        sa.Column("ended_at", Time, nullable=True),
        sa.Column("heartbeat_at", Time, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("replica", sa.String(255), nullable=False),
        sa.Column("recording_id", sa.String(64), nullable=False),
        sa.Column("audio_path", sa.String(1024), nullable=False),
        sa.Column("sample_rate", sa.Integer, nullable=False),
        sa.Column("audio_format", sa.String(32), nullable=False),
        sa.Column("duration_seconds", sa.Float, nullable=False),
        sa.Column("enhance_on_end", sa.Boolean, nullable=False),
        sa.Column("enhancement_job_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_recorded_sessions"),
        sa.UniqueConstraint("recording_id", name="uq_recorded_sessions_recording_id"),
    )
    op.create_index(
        "ix_recorded_sessions_key_id_created_at_id",
        "recorded_sessions",
        ["key_id", "created_at", "id"],
    )
    op.create_index("ix_recorded_sessions_state_replica", "recorded_sessions", ["state", "replica"])
    op.create_index("ix_recorded_sessions_created_at", "recorded_sessions", ["created_at"])
    op.create_table(
        "recorded_finals",
        sa.Column("session_id", sa.String(64), nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("received_at", Time, nullable=False),
        sa.Column("final", sa.JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["recorded_sessions.id"],
            name="fk_recorded_finals_session_id_recorded_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("session_id", "seq", name="pk_recorded_finals"),
    )
    op.create_table(
        "recording_jobs",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("session_id", sa.String(64), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["recorded_sessions.id"],
            name="fk_recording_jobs_session_id_recorded_sessions",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_recording_jobs"),
    )
    op.create_index("ix_recording_jobs_state_run_after", "recording_jobs", ["state", "run_after"])
    op.create_index("ix_recording_jobs_session_id", "recording_jobs", ["session_id"])


def downgrade() -> None:
    op.drop_table("recording_jobs")
    op.drop_table("recorded_finals")
    op.drop_table("recorded_sessions")
