"""Run decodes on a small thread pool, most urgent first, dropping the stale ones.

This is where the embedded server's decode policy is enforced; the recogniser only says
what it would like decoded and, when asked, whether a job is still worth it:

* Jobs are taken in priority order (finals before speculative finals before partials, the
  :class:`~.results.JobKind` values; FIFO within a priority).
* Each job's ``wanted`` check is asked when its turn comes: a partial superseded while it
  waited is dropped without running.
* A *lane* (a stream's partials) has at most one job queued or running. A newer job of the
  lane waits in its place, replacing (and resolving to ``None``) an older waiting one, and
  is queued when the lane's job is done. One stream's partials thus never hold both
  workers, which stay free for finals.

A slow machine therefore produces fewer partials, never a growing backlog, and finals never
wait behind partials that are still queued.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["DecodeScheduler"]

logger = logging.getLogger("asr.embedded.scheduler")

T = TypeVar("T")


@dataclass(order=True)
class _Item(Generic[T]):
    priority: int
    seq: int
    run: Callable[[], T] = field(compare=False)
    wanted: Callable[[], bool] = field(compare=False)
    future: asyncio.Future[T | None] = field(compare=False)
    lane: Hashable | None = field(compare=False, default=None)


class DecodeScheduler:
    """A priority queue of blocking calls in front of ``workers`` threads.

    Args:
        workers: Calls that run at once; match the engine's parallelism.
    """

    def __init__(self, workers: int = 2) -> None:
        self.workers = workers
        self._queue: asyncio.PriorityQueue[_Item[object]] | None = None
        self._seq = itertools.count()
        self._pool: ThreadPoolExecutor | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy_lanes: set[Hashable] = set()
        self._waiting: dict[Hashable, _Item[object]] = {}
        self.dropped = 0
        """Jobs dropped as stale when their turn came."""
        self.ran = 0
        """Jobs started."""
        self.completed = 0
        """Jobs that finished running (with a result or an error)."""
        self.busy_seconds = 0.0
        """Wall time spent running jobs, summed over workers."""

    async def start(self) -> None:
        """Start the worker coroutines on the running loop."""
        self._queue = asyncio.PriorityQueue()
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="asr-decode")
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"asr-decode-{i}") for i in range(self.workers)
        ]

    async def close(self) -> None:
        """Stop the workers; queued calls resolve to ``None``, running ones finish."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        waiting = list(self._waiting.values())
        self._waiting.clear()
        while self._queue is not None and not self._queue.empty():
            waiting.append(self._queue.get_nowait())
        for item in waiting:
            if not item.future.done():
                item.future.set_result(None)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def submit(
        self,
        priority: int,
        run: Callable[[], T],
        wanted: Callable[[], bool],
        *,
        lane: Hashable | None = None,
    ) -> asyncio.Future[T | None]:
        """Queue ``run``; its future resolves to the result, or ``None`` if it was dropped.

        Args:
            priority: Lower runs first.
            run: The blocking call (runs in a worker thread).
            wanted: Asked on the loop just before running; ``False`` drops the call.
            lane: At most one job of a lane is queued or running; a newer one waits, and
                replaces an older waiting one (see the module docstring).
        """
        if self._queue is None:
            raise RuntimeError("DecodeScheduler.start() was not called")
        future: asyncio.Future[T | None] = asyncio.get_running_loop().create_future()
        item: _Item[object] = _Item(priority, next(self._seq), run, wanted, future, lane)  # type: ignore[arg-type]
        if lane is None:
            self._queue.put_nowait(item)
        elif lane in self._busy_lanes:
            replaced = self._waiting.pop(lane, None)
            if replaced is not None and not replaced.future.done():
                self.dropped += 1
                replaced.future.set_result(None)
            self._waiting[lane] = item
        else:
            self._busy_lanes.add(lane)
            self._queue.put_nowait(item)
        return future

    def _lane_done(self, lane: Hashable | None) -> None:
        """The lane's job ran or was dropped: queue its waiting job, if any."""
        if lane is None:
            return
        waiting = self._waiting.pop(lane, None)
        if waiting is None or self._queue is None:
            self._busy_lanes.discard(lane)
        else:
            self._queue.put_nowait(waiting)

    @property
    def queued(self) -> int:
        return 0 if self._queue is None else self._queue.qsize()

    @property
    def progress(self) -> int:
        """Grows whenever a job starts, finishes or is dropped: the pool is moving."""
        return self.ran + self.completed + self.dropped

    async def _worker(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            item = await self._queue.get()
            try:
                await self._run(item, loop)
            finally:
                self._lane_done(item.lane)

    async def _run(self, item: _Item[object], loop: asyncio.AbstractEventLoop) -> None:
        if item.future.done():  # the caller gave up (stream cancelled)
            return
        if not item.wanted():
            self.dropped += 1
            item.future.set_result(None)
            return
        self.ran += 1
        started = time.perf_counter()
        try:
            result = await loop.run_in_executor(self._pool, item.run)
        except asyncio.CancelledError:
            if not item.future.done():
                item.future.set_result(None)
            raise
        except Exception as exc:  # delivered to the caller, who fails its stream
            if not item.future.done():
                item.future.set_exception(exc)
            return
        finally:
            self.busy_seconds += time.perf_counter() - started
            self.completed += 1
        if not item.future.done():
            item.future.set_result(result)
