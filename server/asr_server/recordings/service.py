"""The recordings layer as the gateway uses it: one :class:`Recordings` per process.

::

    async with Recordings.open(settings, riva=client) as recordings:
        recorder = await recordings.start_session(session_id=..., key_id=..., interface="ws")
        await recorder.write(pcm16)          # as audio arrives
        await recorder.add_final(final)      # each real-time final
        await recorder.end()                 # audio fsync'd; job queued if enhance_on_end

Opening migrates the database, marks the sessions a dead gateway left ``recording`` as
``interrupted`` (their WAV headers repaired) and starts the retention sweeper, the job
workers and the heartbeat of open sessions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from asr.backend import SpeechBackend
from asr.events import Final

from .audio_file import WavWriter
from .database import database_url, migrate, open_engine
from .enhancement import enhance
from .jobs import JobPolicy
from .queue import JobQueue
from .records import JobRecord, SessionPage, SessionRecord, SessionState
from .retention import Sweeper, expired_sessions, retention_cutoff
from .settings import RecordingSettings
from .store import SessionStore
from .wav import HEADER_BYTES, WavFormatError, repair_wav
from .worker import JobHandler, JobWorkers

__all__ = [
    "Clock",
    "ENHANCE",
    "Recordings",
    "SessionRecorder",
    "utc_now",
]

logger = logging.getLogger("asr_server.recordings")

ENHANCE = "enhance"
"""Kind of the enhancement job."""

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The current time in UTC (the default clock)."""
    return datetime.now(UTC)


class SessionRecorder:
    """One session being recorded; made by :meth:`Recordings.start_session`."""

    def __init__(
        self, recordings: Recordings, record: SessionRecord, writer: WavWriter, enhance: bool
    ) -> None:
        self.record = record
        self._recordings = recordings
        self._writer = writer
        self._enhance = enhance
        self._finals = 0
        self._ended: SessionRecord | None = None

    @property
    def session_id(self) -> str:
        return self.record.id

    @property
    def seconds(self) -> float:
        """Audio recorded so far."""
        return self._writer.seconds

    async def write(self, pcm: bytes) -> None:
        """Append PCM16 mono at the session's sample rate (what is sent to Riva)."""
        await self._writer.write(pcm)

    async def add_final(self, final: Final) -> None:
        """Store a real-time final (with its word times)."""
        self._finals += 1
        await self._recordings.store.add_final(
            self.record.id, self._finals, final, self._recordings.clock()
        )

    async def end(self) -> SessionRecord | None:
        """Close the audio (header fixed, fsync'd), mark the session ``completed`` and
        queue its enhancement if asked; idempotent.

        Returns:
            The session as stored, or ``None`` if it was deleted meanwhile.
        """
        if self._ended is not None:
            return self._ended
        r = self._recordings
        try:
            data = await self._writer.close()
        finally:
            r._open.pop(self.record.id, None)
        job_id = await r.store.finish(
            self.record.id,
            state=SessionState.COMPLETED,
            duration_seconds=data / (2 * self.record.sample_rate),
            now=r.clock(),
            enqueue=ENHANCE if self._enhance else None,
        )
        if job_id is not None and r.workers is not None:
            r.workers.wake()
        self._ended = await r.store.get(self.record.key_id, self.record.id)
        return self._ended


class Recordings:
    """Sessions, their audio and jobs. Use :meth:`open`."""

    def __init__(
        self,
        settings: RecordingSettings,
        store: SessionStore,
        queue: JobQueue,
        *,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.store = store
        self.queue = queue
        self.clock = clock
        self.workers: JobWorkers | None = None
        self._open: dict[str, SessionRecorder] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    async def open(
        cls,
        settings: RecordingSettings,
        *,
        riva: SpeechBackend | None = None,
        clock: Clock = utc_now,
        run_jobs: bool = True,
        run_sweeper: bool = True,
        handlers: dict[str, JobHandler] | None = None,
    ) -> Recordings:
        """Migrate, recover interrupted sessions and start the background tasks.

        Args:
            settings: Where and how.
            riva: The backend client (Riva's or Dynamo's) enhancement jobs recognise
                with; ``None`` runs no enhancement here (jobs stay queued for a replica
                that has one).
            clock: The current UTC time (tests pass their own).
            run_jobs: Run job workers in this process.
            run_sweeper: Run the retention sweeper (when ``retention_days`` is set).
            handlers: Job handlers by kind, replacing the default ``enhance``.
        """
        engine = open_engine(database_url(settings))
        try:
            await migrate(engine)
        except BaseException:
            await engine.dispose()
            raise
        policy = JobPolicy(
            lease_seconds=settings.job_lease_seconds,
            max_attempts=settings.job_max_attempts,
            retry_seconds=settings.job_retry_seconds,
        )
        self = cls(
            settings,
            SessionStore(engine, settings.data_dir),
            JobQueue(engine, policy, clock=clock),
            clock=clock,
        )
        await self.recover()
        if handlers is None and riva is not None:
            handlers = {ENHANCE: self._enhancement_handler(riva)}
        if run_jobs and handlers:
            self.workers = JobWorkers(
                self.queue,
                handlers,
                concurrency=settings.job_concurrency,
                poll_seconds=settings.job_poll_seconds,
                name=settings.replica_id,
            )
            self.workers.start()
        if run_sweeper and settings.retention_days is not None:
            sweeper = Sweeper(self.sweep, clock=clock, interval=settings.sweep_interval_seconds)
            self._tasks.append(asyncio.create_task(sweeper.run(), name="recording-retention"))
        self._tasks.append(asyncio.create_task(self._heartbeat(), name="recording-heartbeat"))
        return self

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """End open sessions (as ``completed``), stop the tasks and workers."""
        for recorder in list(self._open.values()):
            with contextlib.suppress(Exception):
                await recorder.end()
        if self.workers is not None:
            await self.workers.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.engine.dispose()

    async def start_session(
        self,
        *,
        session_id: str,
        key_id: str,
        interface: str,
        sample_rate: int = 16_000,
        enhance_on_end: bool = False,
    ) -> SessionRecorder:
        """Start recording a session (call it only when :func:`.decide_recording` said
        ``record``)."""
        record = await self.store.create(
            session_id=session_id,
            key_id=key_id,
            interface=interface,
            sample_rate=sample_rate,
            replica=self.settings.replica_id,
            enhance_on_end=enhance_on_end,
            now=self.clock(),
        )
        writer = await WavWriter.create(Path(record.audio_path), sample_rate)
        recorder = SessionRecorder(self, record, writer, enhance_on_end)
        self._open[session_id] = recorder
        return recorder

    async def get_session(self, key_id: str, session_id: str) -> SessionRecord | None:
        """``key_id``'s session with its finals; ``None`` if none (or another key's)."""
        return await self.store.get(key_id, session_id)

    async def list_sessions(
        self, key_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> SessionPage:
        """``key_id``'s sessions, newest first (raises :class:`.store.InvalidCursor`)."""
        return await self.store.list_page(key_id, limit=limit, cursor=cursor)

    async def delete_session(self, key_id: str, session_id: str) -> bool:
        """Delete ``key_id``'s session: audio file, finals and jobs. ``False``: none."""
        recorder = self._open.get(session_id)
        if recorder is not None and recorder.record.key_id == key_id:
            await recorder.end()
        return await self.store.delete(key_id, session_id)

    async def get_job(self, key_id: str, job_id: str) -> JobRecord | None:
        """``key_id``'s job; ``None`` if none (or another key's)."""
        return await self.queue.get(key_id, job_id)

    async def sweep(self, now: datetime | None = None) -> int:
        """Delete the sessions retention expired at ``now``; returns how many."""
        days = self.settings.retention_days
        if days is None:
            return 0
        now = now or self.clock()
        candidates = await self.store.retention_candidates(retention_cutoff(now, days))
        return await self.store.delete_many(
            expired_sessions(candidates, now=now, retention_days=days)
        )

    async def recover(self) -> list[str]:
        """Mark sessions no live gateway records as ``interrupted``, WAV headers repaired.

        Returns:
            Their ids.
        """
        now = self.clock()
        stale = now - timedelta(seconds=3 * self.settings.heartbeat_seconds)
        recovered = []
        for orphan in await self.store.orphans(
            replica=self.settings.replica_id, stale_before=stale
        ):
            try:
                data = await asyncio.to_thread(repair_wav, orphan.audio_path)
            except FileNotFoundError:
                data = 0
            except WavFormatError:
                logger.warning("session %s: audio %s unreadable", orphan.id, orphan.audio_path)
                data = max(orphan.audio_path.stat().st_size - HEADER_BYTES, 0)
            await self.store.finish(
                orphan.id,
                state=SessionState.INTERRUPTED,
                duration_seconds=data / (2 * orphan.sample_rate),
                now=now,
            )
            logger.info("session %s was interrupted; %d bytes of audio kept", orphan.id, data)
            recovered.append(orphan.id)
        return recovered

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.settings.heartbeat_seconds)
            try:
                await self.store.heartbeat(list(self._open), self.clock())
            except Exception:
                logger.exception("heartbeat of open sessions failed")

    def _enhancement_handler(self, riva: SpeechBackend) -> JobHandler:
        async def handle(job: JobRecord) -> dict[str, Any]:
            session = await self.store.get(job.key_id, job.session_id)
            if session is None:
                raise LookupError(f"session {job.session_id} is gone")
            return await enhance(
                riva,
                Path(session.audio_path),
                piece_seconds=self.settings.enhancement_piece_seconds,
                timeout=self.settings.enhancement_timeout_seconds,
            )

        return handle
