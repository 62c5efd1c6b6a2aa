"""The decode scheduler: finals before partials, FIFO within a priority, stale jobs dropped
unrun, queued jobs resolved to None on close."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

from asr.embedded.scheduler import DecodeScheduler

from .conftest import scaled


async def test_priority_order_and_stale_jobs() -> None:
    scheduler = DecodeScheduler(workers=1)
    await scheduler.start()
    started, gate, ran = threading.Event(), threading.Event(), []

    def job(name: str) -> Callable[[], str]:
        def run() -> str:
            if name == "blocker":
                started.set()
                gate.wait(scaled(10))
            ran.append(name)
            return name

        return run

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
