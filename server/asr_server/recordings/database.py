"""The database engine and the migrations applied at startup.

SQLAlchemy's asyncio engine (aiosqlite, asyncpg): the gateway is one event loop, and an
awaited query suspends only its session, where a sync engine would need a thread per
query and a pool sized to match. SQLite transactions start with ``BEGIN IMMEDIATE`` so
that two writers queue on SQLite's lock instead of one failing with "database is locked"
when it upgrades a read to a write; WAL lets readers go on meanwhile.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from .settings import RecordingSettings

__all__ = ["database_url", "migrate", "open_engine"]

_MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = 0x41535252  # pg_advisory_xact_lock key: 'ASRR'
_SQLITE_BUSY_MS = 30_000


def database_url(settings: RecordingSettings) -> str:
    """The async SQLAlchemy URL of ``settings`` (``postgresql://`` gets asyncpg)."""
    if settings.database_url is None:
        return f"sqlite+aiosqlite:///{settings.data_dir / 'recordings.db'}"
    url = make_url(settings.database_url)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+asyncpg")
    elif url.drivername == "sqlite":
        url = url.set(drivername="sqlite+aiosqlite")
    return url.render_as_string(hide_password=False)


def open_engine(url: str, **kwargs: Any) -> AsyncEngine:
    """An async engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    engine = create_async_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)

        @event.listens_for(engine.sync_engine, "connect")
        def _connect(dbapi_connection: Any, _record: Any) -> None:
            # SQLAlchemy's recipe for aiosqlite: the driver emits no BEGIN of its own,
            # ours below does (sqlalchemy.dialects.sqlite, "Serializable isolation").
            dbapi_connection.isolation_level = None
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_MS}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _begin(connection: Connection) -> None:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _upgrade(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Apply the migrations not yet applied, in one transaction.

    On PostgreSQL an advisory lock makes replicas that start together migrate one after
    the other (the later ones find nothing to do); SQLite's ``BEGIN IMMEDIATE`` does the
    same for processes sharing a file.
    """
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK}
            )
        await connection.run_sync(_upgrade)
