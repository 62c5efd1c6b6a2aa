"""Job workers: at most ``concurrency`` jobs at once, each under a renewed lease.

A job's handler runs while a side task renews its lease every third of the lease; when a
renewal finds the lease lost (the job was deleted, or this worker stalled past its lease
and another claimed it) the handler is cancelled and its result dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from .jobs import LeaseLost
from .queue import JobQueue
from .records import JobRecord

__all__ = ["JobHandler", "JobWorkers"]

logger = logging.getLogger("asr_server.recordings.worker")

JobHandler = Callable[[JobRecord], Awaitable[dict[str, Any]]]
"""Runs one job; returns its result (JSON-serialisable). An exception fails the attempt."""


class JobWorkers:
    """Claims and runs jobs from ``queue`` until :meth:`stop`.

    Args:
        queue: Where jobs are claimed.
        handlers: The handler of each job kind.
        concurrency: Jobs run at once.
        poll_seconds: How often idle workers look for jobs (also those due for a retry,
            or whose lease expired); :meth:`wake` looks at once.
        name: Prefix of the lease owner's name (the replica's id).
    """

    def __init__(
        self,
        queue: JobQueue,
        handlers: dict[str, JobHandler],
        *,
        concurrency: int = 1,
        poll_seconds: float = 5.0,
        name: str = "worker",
    ) -> None:
        self.queue = queue
        self.handlers = handlers
        self.owner = f"{name}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._slots = asyncio.Semaphore(concurrency)
        self._poll = poll_seconds
        self._wakeup = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start claiming jobs in a background task."""
        if self._loop is None:
            self._loop = asyncio.create_task(self._claim_loop(), name="recording-jobs")

    def wake(self) -> None:
        """Look for a job now (one was just queued)."""
        self._wakeup.set()

    async def stop(self) -> None:
        """Stop claiming and cancel running jobs; their leases expire and another
        worker (or this one after a restart) resumes them."""
        tasks = [t for t in (self._loop, *self._running) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loop = None

    async def _claim_loop(self) -> None:
        while True:
            await self._slots.acquire()
            try:
                job = await self.queue.claim(self.owner)
            except Exception:
                logger.exception("claiming a job failed")
                job = None
            if job is None:
                self._slots.release()
                self._wakeup.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self._poll)
                continue
            task = asyncio.create_task(self._run(job), name=f"recording-job-{job.id}")
            self._running.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slots.release()
        self._wakeup.set()  # a slot is free: there may be more queued

    async def _run(self, job: JobRecord) -> None:
        handler = self.handlers.get(job.kind)
        log = logging.LoggerAdapter(logger, {"job_id": job.id, "session_id": job.session_id})
        work: asyncio.Task[dict[str, Any]] = asyncio.create_task(
            _call(handler, job), name=f"recording-job-work-{job.id}"
        )
        renewer = asyncio.create_task(self._renew(job, work))
        try:
            try:
                result = await work
            except asyncio.CancelledError:
                if renewer.done():  # the lease was lost, not our own cancellation
                    log.warning("job %s lost its lease; its result is dropped", job.id)
                    return
                raise
            except Exception as exc:
                state = await self.queue.fail(job.id, self.owner, f"{type(exc).__name__}: {exc}")
                log.warning("job %s attempt %d failed (%s): %s", job.id, job.attempts, state, exc)
                return
            await self.queue.complete(job.id, self.owner, result)
            log.info("job %s completed", job.id)
        except LeaseLost as exc:
            log.warning("job %s: %s; its result is dropped", job.id, exc)
        finally:
            renewer.cancel()
            work.cancel()
            for task in (renewer, work):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _renew(self, job: JobRecord, work: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self.queue.policy.lease_seconds / 3)
            try:
                await self.queue.renew(job.id, self.owner)
            except LeaseLost:
                work.cancel()
                return
            except Exception:
                logger.exception("renewing the lease of job %s failed", job.id)


async def _call(handler: JobHandler | None, job: JobRecord) -> dict[str, Any]:
    if handler is None:
        raise LookupError(f"no handler for jobs of kind {job.kind!r}")
    return await handler(job)
