"""Shared by the recordings tests: a real PostgreSQL, databases of both kinds, speech.

No tests here. PostgreSQL is Debian's (``apt-get install postgresql``; ``scripts/setup
--with-browser`` installs it as root): one cluster per test run, on a free port of
127.0.0.1 in a temporary folder, owned by an unprivileged user when the tests run as root
(initdb refuses root). Each test gets a database of its own.
"""

from __future__ import annotations

import atexit
import functools
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from asr.audio import float32_to_pcm16
from asr.evaluation.corpus import Clip, join_clips
from asr_server.recordings import RecordingSettings

from .conftest import load_set, scaled

BACKENDS = ("sqlite", "postgresql")


def _pg_binary(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    # Debian keeps them out of PATH, under the major version.
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return candidates[-1] if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """A throwaway PostgreSQL server (trust authentication, fsync off)."""

    def __init__(self, initdb: str, pg_ctl: str) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="asr-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            user = "postgres"
            try:
                entry = pwd.getpwnam(user)
            except KeyError:
                user, entry = "nobody", pwd.getpwnam("nobody")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
            self._prefix = ["runuser", "-u", user, "--"]
        self._pg_ctl = pg_ctl
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c max_connections=200"
        )
        self._run(
            pg_ctl, "-D", str(self.data), "-o", options, "-l", str(self.root / "log"), "-w",
            "-t", str(int(scaled(60))), "start",
        )  # fmt: skip

    def _run(self, *args: str) -> None:
        subprocess.run([*self._prefix, *args], check=True, capture_output=True, timeout=scaled(120))

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self) -> str:
        """A new empty database; returns its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = self.url("postgres").replace("postgresql://", "postgresql+asyncpg://")
        engine = create_async_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            await engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self._prefix, self._pg_ctl, "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=scaled(60),
        )
        shutil.rmtree(self.root, ignore_errors=True)


@functools.cache
def postgres() -> PostgresCluster:
    """The run's cluster, started on first use; skips when PostgreSQL is not installed."""
    initdb, pg_ctl = _pg_binary("initdb"), _pg_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip(
            "PostgreSQL is not installed (no initdb/pg_ctl on PATH or in "
            "/usr/lib/postgresql/*/bin): apt-get install postgresql, or scripts/setup "
            "--with-browser as root"
        )
    cluster = PostgresCluster(initdb, pg_ctl)
    atexit.register(cluster.stop)
    return cluster


async def database_url(backend: str, data_dir: Path) -> str:
    """A fresh database of ``backend``: a SQLite file in ``data_dir``, or a PostgreSQL one."""
    if backend == "sqlite":
        return f"sqlite:///{data_dir / 'recordings.db'}"
    return await postgres().create_database()


def settings(url: str, data_dir: Path, **overrides: object) -> RecordingSettings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": url,
        "replica_id": "test-replica",
        "job_poll_seconds": 0.2,
    }
    return RecordingSettings.model_validate(values | overrides)


class FakeClock:
    """A UTC clock that moves only when told."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 5, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@functools.cache
def speech(count: int, gap_seconds: float = 1.5) -> tuple[Clip, bytes]:
    """``count`` LJ Speech clips joined with silence, as 16 kHz PCM16, and their text."""
    clip, samples = join_clips(load_set("ljspeech32")[:count], gap_seconds=gap_seconds)
    pcm: npt.NDArray[np.int16] = np.frombuffer(float32_to_pcm16(samples), np.int16)
    return clip, pcm.tobytes()


def chunks(data: bytes, size: int = 3200) -> Iterator[bytes]:
    """``data`` in ``size``-byte pieces (100 ms of 16 kHz PCM16 by default)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


Factory = Callable[..., RecordingSettings]


def exists(path: str | Path) -> bool:
    """Whether ``path`` exists (a sync helper: the tests' event loop only waits on it)."""
    return Path(path).exists()


def file_bytes(path: str | Path) -> bytes:
    return Path(path).read_bytes()
