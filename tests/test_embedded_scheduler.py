"""The decode scheduler: finals before partials, FIFO within a priority, stale jobs dropped
unrun, queued jobs resolved to None on close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from asr.embedded.scheduler import DecodeScheduler

from .conftest import scaled


class Jobs:
    """Blocking calls that record their order; the one named ``blocker`` holds its worker
    until :attr:`gate` is set."""

    def __init__(self, blocker: str) -> None:
        self.blocker = blocker
        self.started, self.gate = threading.Event(), threading.Event()
        self.ran: list[str] = []

    def __call__(self, name: str) -> Callable[[], str]:
        def run() -> str:
            if name == self.blocker:
                self.started.set()
                self.gate.wait(scaled(10))
            self.ran.append(name)
            return name

        return run


async def test_priority_order_and_stale_jobs() -> None:
    scheduler = DecodeScheduler(workers=1)
    await scheduler.start()
    job = Jobs("blocker")
    started, gate, ran = job.started, job.gate, job.ran

    def answer(wanted: bool) -> Callable[[], bool]:
        return lambda: wanted

    try:
        blocker = scheduler.submit(0, job("blocker"), lambda: True)
        await asyncio.to_thread(started.wait, scaled(10))  # the only worker is busy now
        futures = {
            name: scheduler.submit(priority, job(name), answer(wanted))
            for name, priority, wanted in [
                ("partial-1", 2, True),
                ("stale-partial", 2, False),
                ("final", 0, True),
                ("speculative", 1, True),
                ("partial-2", 2, True),
            ]
        }
        assert scheduler.queued == 5
        gate.set()
        results = await asyncio.wait_for(asyncio.gather(blocker, *futures.values()), scaled(10))
    finally:
        await scheduler.close()
    assert ran == ["blocker", "final", "speculative", "partial-1", "partial-2"]
    assert results[2] is None  # the stale partial resolved to None, unrun
    assert scheduler.dropped == 1 and scheduler.ran == 5


async def test_close_resolves_queued_jobs_to_none() -> None:
    scheduler = DecodeScheduler(workers=1)
    await scheduler.start()
    started, gate = threading.Event(), threading.Event()

    def block() -> bool:
        started.set()
        return gate.wait(scaled(10))

    running = scheduler.submit(0, block, lambda: True)
    await asyncio.to_thread(started.wait, scaled(10))
    queued = scheduler.submit(0, lambda: "never", lambda: True)
    closing = asyncio.create_task(scheduler.close())
    await asyncio.sleep(0)
    gate.set()
    await closing
    assert await queued is None
    running.cancel()


async def test_a_lane_runs_one_job_at_a_time_and_keeps_only_the_newest_waiting() -> None:
    scheduler = DecodeScheduler(workers=2)
    await scheduler.start()
    job = Jobs("partial-1")
    started, gate, ran = job.started, job.gate, job.ran

    try:
        first = scheduler.submit(2, job("partial-1"), lambda: True, lane="stream")
        await asyncio.to_thread(started.wait, scaled(10))
        older = scheduler.submit(2, job("partial-2"), lambda: True, lane="stream")
        newer = scheduler.submit(2, job("partial-3"), lambda: True, lane="stream")
        # The other worker is free: another lane's job and a final run meanwhile.
        other = scheduler.submit(2, job("other-stream"), lambda: True, lane="other")
        final = scheduler.submit(0, job("final"), lambda: True)
        assert list(await asyncio.wait_for(asyncio.gather(other, final), scaled(10))) == [
            "other-stream",
            "final",
        ]
        assert await older is None  # replaced while it waited, never run
        gate.set()
        assert list(await asyncio.wait_for(asyncio.gather(first, newer), scaled(10))) == [
            "partial-1",
            "partial-3",
        ]
    finally:
        await scheduler.close()
    assert "partial-2" not in ran and ran[-1] == "partial-3"
    assert scheduler.dropped == 1
