"""A bounded soak: ramp real-time WebSocket sessions past capacity and back, kill Riva
once on the way, and check that nothing admitted is lost and the gateway returns to its
baseline.

``asr riva-local`` and ``asr serve`` run as subprocesses on 127.0.0.1 (:mod:`load.procs`).
One warm-up session runs first, then the *baseline* is read: memory, open fds and
threads of both servers, and the gateway's ``/metrics``. The schedule is a list
of levels over ``duration_seconds``: at each step that many simulated users each open
sessions back to back (one clip each, streamed at real time once admitted); a user above
the level finishes its session and waits; a refused or failed user retries after
``retry_after_seconds``. At ``kill_riva_at`` seconds Riva gets SIGKILL and is started
again on the same port. After the last step every open session finishes (each is bounded
by its clip + ``slack_seconds``), and the soak waits up to ``settle_seconds`` for the
gateway's readings to come back within the tolerance before reading them *after*.

Every session is recorded by :mod:`load.soak_session`; :mod:`load.soak_figures` turns the
records into the report's figures; :mod:`load.soak_report` prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .clips import PcmClip, load_clips
from .procs import REPO, ServerProcess, start_riva, start_serve
from .session import InFlight
from .soak_figures import (
    Outage,
    Step,
    Tolerance,
    account_sessions,
    audio_by_phase,
    compare_resources,
    resources_report,
    schedule,
    with_recovery,
)
from .soak_probe import Timeline, metrics
from .soak_session import QUERY, SoakSession, run_soak_session

__all__ = ["DEFAULT_LEVELS", "SoakConfig", "run_soak"]

DEFAULT_LEVELS = (2, 4, 6, 8, 10, 12, 10, 8, 6, 4, 2)
STREAM_PATH = "/v1/audio/transcriptions/stream"


@dataclass(frozen=True, slots=True)
class SoakConfig:
    """What the soak does; it is bounded in time and ends by itself.

    Attributes:
        clips_dir: A speech set (``refs.jsonl`` + WAV); no default, the caller names it.
        levels: Concurrent users per step, in order (up past capacity, then down).
        duration_seconds: Length of the schedule; each level gets an equal share.
        kill_riva: Kill Riva (SIGKILL) once and restart it on the same port.
        kill_riva_at: Seconds into the schedule of the kill; ``None`` is half-way.
        riva_max_streams: ``asr riva-local --max-streams`` (its default is 8).
        gateway_max_sessions: ``ASR_SERVER_LIMITS__MAX_SESSIONS`` of ``asr serve``.
        max_clip_seconds: Leave out longer clips.
        stagger_seconds: Between the first sessions of users joining at a step.
        retry_after_seconds: A refused or failed user waits this long before retrying.
        slack_seconds: A session may take its clip's length plus this.
        warmup_sessions: Sessions run one by one before the baseline is read.
        settle_seconds: Longest wait after the soak for readings to return to baseline.
        probe_interval: Seconds between the gateway's ``/readyz`` probes; 0 for none.
        tolerance: How far above baseline a reading may end and still count as back.
    """

    clips_dir: Path
    levels: tuple[int, ...] = DEFAULT_LEVELS
    duration_seconds: float = 240.0
    kill_riva: bool = True
    kill_riva_at: float | None = None
    riva_max_streams: int = 8
    gateway_max_sessions: int = 10
    max_clip_seconds: float | None = 12.0
    stagger_seconds: float = 0.25
    retry_after_seconds: float = 1.0
    slack_seconds: float = 30.0
    warmup_sessions: int = 1
    settle_seconds: float = 30.0
    probe_interval: float = 2.0
    tolerance: Tolerance = field(default_factory=Tolerance)

    def __post_init__(self) -> None:
        if not self.levels or min(self.levels) < 1:
            raise ValueError("levels must be positive")
        if self.duration_seconds <= 0:
            raise ValueError("duration_seconds must be positive")
        at = self.kill_riva_at
        if at is not None and not 0 <= at < self.duration_seconds:
            raise ValueError("kill_riva_at must fall within the duration")

    @property
    def kill_at(self) -> float | None:
        if not self.kill_riva:
            return None
        return self.duration_seconds / 2 if self.kill_riva_at is None else self.kill_riva_at


def _changed_files() -> list[str]:
    """Uncommitted changes under src/ and server/: the servers run the working tree."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "src", "server", "load"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout
        return [line[3:] for line in out.splitlines() if line]
    return []


class _Soak:
    def __init__(self, config: SoakConfig, clips: list[PcmClip], say: Callable[[str], None]):
        self.config = config
        self.clips = clips
        self.say = say
        self.steps: list[Step] = schedule(config.levels, config.duration_seconds)
        self.sessions: list[SoakSession] = []
        self.admitted = InFlight()
        self.open_now = 0
        self.target = 0
        self.changed = asyncio.Event()
        self.stopping = False
        self.t0 = 0.0
        self.riva: ServerProcess | None = None
        self.old_riva: list[ServerProcess] = []
        self.gateway: ServerProcess | None = None
        self.outage: Outage | None = None
        self.restart: dict[str, Any] = {}
        self.timeline: Timeline | None = None
        self._next = 0

    @property
    def base_url(self) -> str:
        assert self.gateway is not None and self.gateway.address is not None
        return self.gateway.address.rstrip("/")

    @property
    def url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + STREAM_PATH + QUERY

    def now(self) -> float:
        return time.monotonic() - self.t0

    def step_at(self, t: float) -> int:
        for step in self.steps:
            if t < step.end:
                return step.index
        return self.steps[-1].index

    async def session(self, slot: int, clip: PcmClip, step: int) -> SoakSession:
        index = self._next
        self._next += 1
        self.open_now += 1
        try:
            return await run_soak_session(
                self.url,
                index=index,
                slot=slot,
                step=step,
                clip=clip,
                t0=self.t0,
                admitted=self.admitted,
                slack_seconds=self.config.slack_seconds,
            )
        finally:
            self.open_now -= 1

    async def user(self, slot: int) -> None:
        turn = 0
        while not self.stopping:
            if slot >= self.target:
                self.changed.clear()
                await self.changed.wait()
                continue
            # Users walk the clips from different places, so lengths mix at every level.
            clip = self.clips[(slot * 3 + turn) % len(self.clips)]
            turn += 1
            result = await self.session(slot, clip, self.step_at(self.now()))
            self.sessions.append(result)
            if result.outcome != "completed" and not self.stopping:
                await asyncio.sleep(self.config.retry_after_seconds)

    async def drive(self) -> None:
        """Set the level at each step; users joining a step start ``stagger`` apart."""
        for step in self.steps:
            await asyncio.sleep(max(0.0, step.start - self.now()))
            self.say(f"soak: t={self.now():.0f} s, level {step.level} ({step.phase})")
            for level in range(self.target + 1, step.level + 1):
                self.target = level
                self.changed.set()
                await asyncio.sleep(self.config.stagger_seconds)
            self.target = step.level
            self.changed.set()
        await asyncio.sleep(max(0.0, self.steps[-1].end - self.now()))
        self.stopping = True
        self.target = 0
        self.changed.set()

    async def kill_riva(self, at: float) -> None:
        await asyncio.sleep(max(0.0, at - self.now()))
        riva = self.riva
        assert riva is not None and riva.address is not None
        port = int(riva.address.rsplit(":", 1)[1])
        before = riva.sample()
        killed = self.now()
        code = await riva.kill()
        self.old_riva.append(riva)
        self.say(f"soak: t={killed:.0f} s, Riva killed (exit {code}); restarting on port {port}")
        self.restart = {
            "killed_at": round(killed, 2),
            "exit_code": code,
            "admitted_open_at_kill": self.admitted.now,
            "riva_before_kill": None if before is None else before.as_dict(),
            "port": port,
            "attempts": 0,
        }
        self.outage = Outage(round(killed, 2), None)
        for attempt in range(1, 6):
            self.restart["attempts"] = attempt
            try:
                self.riva = await start_riva(max_streams=self.config.riva_max_streams, port=port)
                break
            except RuntimeError as exc:
                self.restart["last_error"] = str(exc)
                await asyncio.sleep(1.0)
        else:
            self.say("soak: Riva did not come back")
            return
        ready = self.now()
        self.outage = Outage(round(killed, 2), round(ready, 2))
        self.restart |= {"ready_at": round(ready, 2), "down_seconds": round(ready - killed, 2)}
        self.say(f"soak: t={ready:.0f} s, Riva back after {ready - killed:.1f} s")

    def servers(self) -> dict[str, ServerProcess]:
        out = {}
        if self.gateway is not None:
            out["gateway"] = self.gateway
        if self.riva is not None and self.riva.running:
            out["riva"] = self.riva
        return out

    def readings(self) -> dict[str, dict[str, float] | None]:
        out: dict[str, dict[str, float] | None] = {}
        for name, server in self.servers().items():
            res = server.sample()
            out[name] = None if res is None else dict(res.as_dict()) | {"pid": server.pid}
        return out

    async def sample_forever(self) -> None:
        assert self.timeline is not None
        while True:
            self.timeline.sample(self.servers(), self.open_now, self.admitted.now)
            await asyncio.sleep(1.0)

    async def settle(self, baseline: dict[str, dict[str, float] | None]) -> float:
        """Wait until the gateway is back within tolerance (or the time is up)."""
        began = time.monotonic()
        while time.monotonic() - began < self.config.settle_seconds:
            now = self.readings()
            gw = compare_resources(
                baseline.get("gateway"), now.get("gateway"), self.config.tolerance
            )
            if gw["within"]:
                break
            await asyncio.sleep(1.0)
        return round(time.monotonic() - began, 1)

    async def run(self) -> dict[str, Any]:
        cfg = self.config
        self.riva = await start_riva(max_streams=cfg.riva_max_streams)
        first_riva = {"address": self.riva.address, "pid": self.riva.pid}
        self.gateway = await start_serve(
            str(self.riva.address), max_sessions=cfg.gateway_max_sessions
        )
        self.say(f"soak: Riva on {self.riva.address}, gateway on {self.base_url}")
        self.t0 = time.monotonic()
        shortest = min(self.clips, key=lambda c: c.seconds)
        warmup = [await self.session(0, shortest, -1) for _ in range(cfg.warmup_sessions)]
        self._next = 0
        await asyncio.sleep(2.0)  # let the warm-up's connection and streams close
        baseline = self.readings()
        metrics_before = await metrics(self.base_url)
        self.say(f"soak: baseline {baseline}")

        self.t0 = time.monotonic()
        self.timeline = Timeline(self.t0, self.base_url, cfg.probe_interval)
        background = [
            asyncio.create_task(self.sample_forever()),
            asyncio.create_task(self.timeline.probe()),
        ]
        killer = None
        if cfg.kill_at is not None:
            killer = asyncio.create_task(self.kill_riva(cfg.kill_at))
        users = [asyncio.create_task(self.user(i)) for i in range(max(cfg.levels))]
        try:
            await self.drive()
            if killer is not None:
                await killer
            bound = max(c.seconds for c in self.clips) + cfg.slack_seconds + 15.0
            async with asyncio.timeout(bound):
                await asyncio.gather(*users)
        finally:
            for task in [*users, *background]:
                task.cancel()
            await asyncio.gather(*users, *background, return_exceptions=True)
        ended = self.now()
        settled = await self.settle(baseline)
        after = self.readings()
        metrics_after = await metrics(self.base_url)
        return {
            "servers": {
                "riva_first": first_riva,
                "riva_now": {"address": self.riva.address, "pid": self.riva.pid},
                "gateway": {"address": self.base_url, "pid": self.gateway.pid},
            },
            "warmup": [asdict(s) for s in warmup],
            "soak_seconds": round(ended, 1),
            "settle_seconds": settled,
            "riva_restart": self.restart or None,
            "resources": resources_report(baseline, after, cfg.tolerance),
            "gateway_metrics": {"before": metrics_before, "after": metrics_after},
            "readiness": self.timeline.readiness,
            "peak": self.timeline.peak,
            "timeline": self.timeline.samples,
        }


async def run_soak(
    config: SoakConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the soak; the report as a dict (see :mod:`load.soak_report` for the figures).

    Raises:
        ValueError: No clips in ``clips_dir`` or a bad config.
        RuntimeError: A server subprocess did not start.
    """
    say = progress or (lambda _: None)
    clips = load_clips(config.clips_dir, config.max_clip_seconds)
    soak = _Soak(config, clips, say)
    started = time.monotonic()
    report: dict[str, Any] = {
        "tool": "python -m load --soak",
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "working_tree_changes": _changed_files(),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
        | {"kill_at": config.kill_at, "clip_count": len(clips)},
        "schedule": [asdict(s) for s in soak.steps],
    }
    try:
        report |= await soak.run()
    finally:
        codes: dict[str, int | None] = {}
        if soak.gateway is not None:
            codes["gateway"] = await soak.gateway.stop()
        for i, old in enumerate(soak.old_riva):
            codes[f"riva_killed_{i}"] = await old.stop()
        if soak.riva is not None and soak.riva not in soak.old_riva:
            codes["riva"] = await soak.riva.stop()
        report["exit_codes"] = codes
        servers = [s for s in [soak.gateway, soak.riva, *soak.old_riva] if s is not None]
        report["server_error_logs"] = sorted({s.log_path for s in servers if s.had_errors()})
        for old in soak.old_riva:  # killed on purpose: its log matters only if it had errors
            if not old.had_errors():
                with contextlib.suppress(OSError):
                    os.unlink(old.log_path)
    report["machine"]["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    outage = with_recovery(soak.outage, soak.sessions)
    if outage is not None:
        recovery = None
        if outage.recovered is not None and outage.ready is not None:
            recovery = round(outage.recovered - outage.ready, 2)
        report["outage"] = asdict(outage) | {"recovery_seconds": recovery}
    report["sessions"] = account_sessions(soak.sessions, outage, config.riva_max_streams)
    report["audio"] = audio_by_phase(soak.sessions, soak.steps, outage, config.riva_max_streams)
    report["session_results"] = [asdict(s) for s in sorted(soak.sessions, key=lambda s: s.index)]
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    return report
