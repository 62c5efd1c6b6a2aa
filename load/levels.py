"""Running the ramp: levels of concurrent real-time sessions, one after the other.

A *level* of N runs N simulated users at once: user *i* starts ``i * stagger_seconds``
after the first (so the load rises one session at a time) and streams
``clips_per_session`` clips back to back at real time, one session per clip. A level
*keeps up* when no session failed or timed out and the final latency p95 stays under a
bound (:func:`load.judge.judge`); the capacity is the last level that kept up before the
first that did not. The ramp stops at the first failing level (plus
``levels_past_capacity`` more), when the next level would run past ``max_seconds``, or
after the last level.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from asr.evaluation.runner import Transport
from asr.options import RecognitionOptions

from .clips import PcmClip
from .config import LoadConfig
from .judge import judge, summarize
from .procs import CpuWindow, ServerProcess
from .session import InFlight, SessionResult, run_session

__all__ = ["LevelRunner"]


async def _sample_memory(servers: list[ServerProcess], every: float = 0.5) -> None:
    while True:
        for s in servers:
            s.sample()
        await asyncio.sleep(every)


class LevelRunner:
    """Runs sessions, levels and the ramp against the servers of one run.

    Args:
        config: What to run.
        clips: What to stream.
        servers: The processes to measure (none when the targets are external).
        progress: Called with a line per level.
    """

    def __init__(
        self,
        config: LoadConfig,
        clips: list[PcmClip],
        servers: list[ServerProcess],
        progress: Callable[[str], None],
    ) -> None:
        self.config = config
        self.clips = clips
        self.servers = servers
        self.progress = progress
        self.options = RecognitionOptions(word_time_offsets=True)
        self.start = time.monotonic()

    async def session(self, transport: Transport, clip: PcmClip, held: InFlight) -> SessionResult:
        """One clip through ``transport``, counted in ``held`` while it runs."""
        with held.hold():
            return await run_session(
                transport,
                clip_id=clip.clip.id,
                pcm=clip.pcm,
                reference=clip.clip.text,
                options=self.options,
                run_start=self.start,
                slack_seconds=self.config.slack_seconds,
            )

    async def _user(
        self, transport: Transport, index: int, level: int, held: InFlight
    ) -> list[SessionResult]:
        await asyncio.sleep(index * self.config.stagger_seconds)
        results = []
        for j in range(self.config.clips_per_session):
            clip = self.clips[(index + j * level) % len(self.clips)]
            results.append(await self.session(transport, clip, held))
        return results

    async def level(self, transport: Transport, level: int) -> dict[str, Any]:
        """Run one level; its figures (:func:`load.judge.summarize`) and the judgement."""
        held = InFlight()
        window = CpuWindow(self.servers)
        sampler = asyncio.create_task(_sample_memory(self.servers))
        began = time.monotonic()
        try:
            per_user = await asyncio.gather(
                *(self._user(transport, i, level, held) for i in range(level))
            )
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        wall = time.monotonic() - began
        results = [r for user in per_user for r in user]
        summary = summarize(results, held.max)
        processes = window.close()
        summary |= {
            "level": level,
            "wall_seconds": round(wall, 2),
            "processes": processes,
        }
        if "riva" in processes and summary["audio_seconds"]:
            # Engine CPU per second of audio: above ~2 (cores) it cannot keep up here.
            summary["riva_cpu_seconds_per_audio_second"] = round(
                processes["riva"]["cpu_seconds"] / summary["audio_seconds"], 3
            )
        summary["reasons"] = judge(summary, self.config.criteria)
        summary["keeps_up"] = not summary["reasons"]
        summary["session_results"] = [asdict(r) for r in results]
        return summary

    def _estimate(self, level: int) -> float:
        mean = float(np.mean([c.seconds for c in self.clips]))
        return (level - 1) * self.config.stagger_seconds + self.config.clips_per_session * (
            mean + 3.0
        )

    async def ramp(self, transport: Transport) -> dict[str, Any]:
        """The levels in order until one does not keep up; the capacity found."""
        levels: list[dict[str, Any]] = []
        capacity = 0
        failed_at: int | None = None
        stopped = "all levels run"
        past = 0
        for level in self.config.levels:
            elapsed = time.monotonic() - self.start
            if elapsed + self._estimate(level) > self.config.max_seconds:
                stopped = f"time budget of {self.config.max_seconds:.0f} s"
                break
            self.progress(f"{transport.name}: level {level} ...")
            summary = await self.level(transport, level)
            levels.append(summary)
            f = summary["final_latency_ms"]
            self.progress(
                f"{transport.name}: level {level}: {summary['completed']}/{summary['sessions']}"
                f" ok, final p50/p95 {f['p50']}/{f['p95']} ms, "
                f"{'keeps up' if summary['keeps_up'] else '; '.join(summary['reasons'])}"
            )
            if summary["keeps_up"] and failed_at is None:
                capacity = level
            elif failed_at is None:
                failed_at = level
                stopped = f"level {level} did not keep up"
                if self.config.levels_past_capacity == 0:
                    break
            else:
                past += 1
                if past >= self.config.levels_past_capacity:
                    break
        return {
            "transport": transport.name,
            "levels": levels,
            "capacity": capacity,
            "first_failing_level": failed_at,
            "stopped": stopped,
        }
