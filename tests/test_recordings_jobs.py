"""The job queue on SQLite and on a real PostgreSQL: every job claimed once by concurrent
workers, leases, retries and the bound on concurrency."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from asr_server.recordings import (
    ENHANCE,
    JobPolicy,
    JobRecord,
    JobState,
    LeaseLost,
    Recordings,
    utc_now,
)
from asr_server.recordings.database import database_url as engine_url
from asr_server.recordings.database import open_engine
from asr_server.recordings.queue import JobQueue

from .conftest import scaled
from .recordings_support import BACKENDS, FakeClock, database_url, settings


async def _sessions_with_jobs(recordings: Recordings, count: int) -> list[str]:
    job_ids = []
    for n in range(count):
        recorder = await recordings.start_session(
            session_id=f"s-{n}", key_id="key-a", interface="ws", enhance_on_end=True
        )
        ended = await recorder.end()
        assert ended is not None and ended.enhancement_job_id is not None
        job_ids.append(ended.enhancement_job_id)
    return job_ids


@pytest.mark.parametrize("backend", BACKENDS)
async def test_concurrent_workers_claim_each_job_once(backend: str, tmp_path: Path) -> None:
    config = settings(await database_url(backend, tmp_path), tmp_path)
    async with await Recordings.open(config, run_jobs=False) as recordings:
        job_ids = await _sessions_with_jobs(recordings, 24)
    # Two "replicas": separate engines (connection pools), claiming at the same time.
    engines = [open_engine(engine_url(config)) for _ in range(2)]
    queues = [JobQueue(e, JobPolicy(lease_seconds=600), clock=utc_now) for e in engines]
    claimed: list[list[str]] = [[], []]

    async def drain(n: int) -> None:
        while (job := await queues[n].claim(f"worker-{n}")) is not None:
            claimed[n].append(job.id)
            await asyncio.sleep(0)

    try:
        await asyncio.wait_for(asyncio.gather(drain(0), drain(1)), scaled(60))
    finally:
        for engine in engines:
            await engine.dispose()
    everything = claimed[0] + claimed[1]
    assert sorted(everything) == sorted(job_ids)  # each exactly once
    if backend == "postgresql":
        assert claimed[0] and claimed[1], "SKIP LOCKED lets both replicas make progress"


@pytest.mark.parametrize("backend", BACKENDS)
async def test_lease_expiry_retry_and_stale_owner(backend: str, tmp_path: Path) -> None:
    clock = FakeClock()
    config = settings(
        await database_url(backend, tmp_path),
        tmp_path,
        job_lease_seconds=60,
        job_max_attempts=2,
        job_retry_seconds=30,
    )
    async with await Recordings.open(config, run_jobs=False, clock=clock) as recordings:
        (job_id,) = await _sessions_with_jobs(recordings, 1)
        queue = recordings.queue
        first = await queue.claim("a")
        assert first is not None and first.state is JobState.RUNNING and first.attempts == 1
        assert await queue.claim("b") is None  # leased
        clock.advance(seconds=59)
        await queue.renew(job_id, "a")
        clock.advance(seconds=59)
        assert await queue.claim("b") is None  # the renewal holds it
        clock.advance(seconds=2)
        second = await queue.claim("b")
        assert second is not None and second.attempts == 2
        with pytest.raises(LeaseLost):  # "a" stalled past its lease: its result is refused
            await queue.complete(job_id, "a", {"finals": []})
        assert await queue.fail(job_id, "b", "RuntimeError: backend down") is JobState.FAILED
        job = await recordings.get_job("key-a", job_id)
        assert job is not None and job.state is JobState.FAILED
        assert job.error == "RuntimeError: backend down" and job.result is None


@pytest.mark.parametrize("backend", BACKENDS)
async def test_workers_retry_failures_and_bound_concurrency(backend: str, tmp_path: Path) -> None:
    config = settings(
        await database_url(backend, tmp_path),
        tmp_path,
        job_concurrency=2,
        job_retry_seconds=0,
        job_max_attempts=3,
    )
    running = 0
    peak = 0
    attempts: dict[str, int] = {}

    async def handler(job: JobRecord) -> dict[str, object]:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.sleep(0.05)
            attempts[job.id] = attempts.get(job.id, 0) + 1
            if attempts[job.id] == 1 and job.session_id == "s-0":
                raise RuntimeError("first attempt fails")
            return {"finals": [], "attempt": job.attempts}
        finally:
            running -= 1

    async with await Recordings.open(config, handlers={ENHANCE: handler}) as recordings:
        job_ids = await _sessions_with_jobs(recordings, 6)
        for _ in range(int(scaled(400))):
            jobs = [await recordings.get_job("key-a", j) for j in job_ids]
            if all(j is not None and j.state is JobState.COMPLETED for j in jobs):
                break
            await asyncio.sleep(0.05)
    assert all(j is not None and j.state is JobState.COMPLETED for j in jobs)
    assert peak == 2
    retried = jobs[0]
    assert (
        retried is not None
        and retried.attempts == 2
        and retried.result
        == {
            "finals": [],
            "attempt": 2,
        }
    )
    assert retried.error is None
