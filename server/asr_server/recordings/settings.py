"""Settings of the recordings layer, a frozen model meant to nest in the server's settings.

Nested as ``recordings`` in :class:`asr_server.settings.ServerSettings`, they read from
``ASR_SERVER_RECORDINGS__DATA_DIR``, ``ASR_SERVER_RECORDINGS__DATABASE_URL``, ...; the policy
itself is ``ASR_SERVER_RECORDING`` (:class:`.policy.RecordingPolicy`), a field of its own.
"""

from __future__ import annotations

import socket
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["RecordingSettings"]


class RecordingSettings(BaseModel):
    """Where recordings go, how long they stay, how jobs run.

    Attributes:
        data_dir: Folder of the audio files (``audio/``) and of the SQLite database.
            Several replicas need it on shared storage to serve each other's audio.
        database_url: SQLAlchemy URL; ``None`` is SQLite in ``data_dir/recordings.db``.
            ``postgresql://user:pass@host/db`` (asyncpg) lets several replicas share it.
        retention_days: Sessions older than this (from their end) are deleted, audio,
            finals and jobs; ``None`` keeps them until deleted.
        sweep_interval_seconds: How often the retention sweep runs.
        replica_id: This gateway's name. At startup, sessions it left ``recording``
            become ``interrupted``; keep it stable across restarts (a StatefulSet's pod
            name, the host name).
        heartbeat_seconds: How often open sessions' heartbeats are written; a session of
            another replica whose heartbeat is 3 times as old is interrupted too.
        job_concurrency: Jobs this replica runs at once.
        job_lease_seconds: How long a claim holds without renewal: a worker that dies
            leaves its job to be claimed again after this.
        job_max_attempts: Claims before a job that keeps failing is ``failed``.
        job_retry_seconds: Wait before a failed attempt's retry (doubling each time).
        job_poll_seconds: How often idle workers look for jobs queued elsewhere.
        enhancement_piece_seconds: The longest piece of a recording sent in one
            ``Recognize``; longer ones are cut at their quietest moments.
        enhancement_timeout_seconds: Deadline of each piece's ``Recognize``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("asr-data")
    database_url: str | None = None
    retention_days: float | None = Field(default=None, gt=0)
    sweep_interval_seconds: float = Field(default=3600.0, gt=0)
    replica_id: str = Field(default_factory=socket.gethostname, min_length=1, max_length=255)
    heartbeat_seconds: float = Field(default=30.0, gt=0)
    job_concurrency: int = Field(default=1, ge=1, le=64)
    job_lease_seconds: float = Field(default=120.0, gt=0)
    job_max_attempts: int = Field(default=3, ge=1, le=100)
    job_retry_seconds: float = Field(default=10.0, ge=0)
    job_poll_seconds: float = Field(default=5.0, gt=0)
    enhancement_piece_seconds: float = Field(default=300.0, ge=10)
    enhancement_timeout_seconds: float = Field(default=600.0, gt=0)
