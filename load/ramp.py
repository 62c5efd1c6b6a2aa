"""Ramp the number of concurrent real-time sessions, judge each level, probe the limits.

A *level* of N runs N simulated users at once: user *i* starts ``i * stagger_seconds``
after the first (so the load rises one session at a time) and streams
``clips_per_session`` clips back to back at real time, one session per clip. A level
*keeps up* when no session failed or timed out and the final latency p95 stays under a
bound; the capacity is the last level that kept up before the first that did not. The
ramp stops at the first failing level (plus ``levels_past_capacity`` more), when the next
level would run past ``max_seconds``, or after the last level.

The *overload probe* then restarts the servers with their limits set to the capacity
(``max_streams`` of the Riva server, ``max_sessions`` of the WebSocket server), holds that
many sessions, and opens ``overload_extra`` more: they must be refused at once with the
typed code (RESOURCE_EXHAUSTED / ``too_many_sessions``) while the admitted ones finish with
their transcripts and latencies intact.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asr.audio import float32_to_pcm16
from asr.client import RivaASRClient
from asr.evaluation.corpus import load_corpus
from asr.evaluation.runner import GrpcTransport, Transport, percentile
from asr.evaluation.websocket import WebSocketTransport, is_loopback_url
from asr.options import RecognitionOptions
from asr.settings import RivaSettings
from asr.wer import word_error_rate

from .procs import CpuWindow, ServerProcess, start_gateway, start_riva
from .session import SessionResult, run_session

__all__ = [
    "Clip",
    "Criteria",
    "LoadConfig",
    "is_loopback_uri",
    "judge",
    "load_clips",
    "run_load",
    "summarize",
]

logger = logging.getLogger("load")

SPEECH = Path(
    os.environ.get(
        "ASR_SPEECH_FIXTURES", Path(__file__).resolve().parents[2] / "shared/fixtures/speech"
    )
)

MODES = ("websocket", "grpc")


@dataclass(frozen=True, slots=True)
class Criteria:
    """When a level counts as keeping up.

    Attributes:
        max_final_p95_ms: Bound on the final latency p95 (end of speech to final).
        max_error_rate: Largest share of sessions that may fail (timeouts included).
        max_first_partial_p95_ms: Bound on the first-partial p95; ``None`` for none. The
            engine drops stale partials before it delays finals, so partials show
            overload first.
    """

    max_final_p95_ms: float = 2500.0
    max_error_rate: float = 0.0
    max_first_partial_p95_ms: float | None = None


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """What the load tool does; every run is bounded in sessions and seconds.

    Attributes:
        modes: ``"websocket"`` (client -> WebSocket server -> Riva) and/or ``"grpc"``
            (client -> Riva), ramped one after the other.
        levels: Concurrent sessions per level, in order.
        stagger_seconds: Delay between the starts of two users of a level.
        clips_per_session: Clips each user streams back to back (one session each).
        clips_dir: A speech set (``refs.jsonl`` + WAV).
        max_clip_seconds: Leave out longer clips.
        criteria: When a level keeps up.
        levels_past_capacity: Levels still run after the first failing one.
        max_seconds: Budget for the whole ramp; a level that would overrun is skipped.
        slack_seconds: A session may take its clip's length plus this before it times out.
        overload: Run the overload probe after the ramp (own servers only).
        overload_limit: The limit set for the probe; ``None`` uses the capacity found.
        overload_extra: Sessions opened beyond the limit.
        riva_uri: Use this Riva server instead of starting one.
        ws_url: Use this WebSocket server instead of starting one.
        allow_remote: Accept targets that are not loopback.
    """

    modes: tuple[str, ...] = MODES
    levels: tuple[int, ...] = (1, 2, 3, 4, 6, 8)
    stagger_seconds: float = 1.0
    clips_per_session: int = 2
    clips_dir: Path = SPEECH / "librispeech_mini"
    max_clip_seconds: float | None = 12.0
    criteria: Criteria = field(default_factory=Criteria)
    levels_past_capacity: int = 0
    max_seconds: float = 900.0
    slack_seconds: float = 30.0
    overload: bool = True
    overload_limit: int | None = None
    overload_extra: int = 2
    riva_uri: str | None = None
    ws_url: str | None = None
    allow_remote: bool = False

    def __post_init__(self) -> None:
        if not self.modes or any(m not in MODES for m in self.modes):
            raise ValueError(f"modes must be among {MODES}, got {self.modes}")
        if not self.levels or min(self.levels) < 1:
            raise ValueError("levels must be positive")
        if self.clips_per_session < 1:
            raise ValueError("clips_per_session must be at least 1")


@dataclass(frozen=True, slots=True)
class Clip:
    id: str
    text: str
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / 32_000


def load_clips(folder: Path, max_seconds: float | None = None) -> list[Clip]:
    """The set's clips as 16 kHz PCM16, shortest-first order kept from ``refs.jsonl``."""
    clips = []
    for c in load_corpus(folder):
        pcm = float32_to_pcm16(c.samples())
        if max_seconds is None or len(pcm) / 32_000 <= max_seconds:
            clips.append(Clip(c.id, c.text, pcm))
    if not clips:
        raise ValueError(f"no clip in {folder} is at most {max_seconds} s long")
    return clips


def is_loopback_uri(uri: str) -> bool:
    """Whether a gRPC target ``host:port`` names a loopback host."""
    host = uri.removeprefix("ipv4:").removeprefix("ipv6:")
    if host.startswith("["):
        host = host[1 : host.find("]")]
    elif host.count(":") == 1:
        host = host.rsplit(":", 1)[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    return {
        f"p{q}": None if (v := percentile(values, q)) is None else round(v, 1) for q in (50, 95, 99)
    }


def summarize(results: Sequence[SessionResult], held_max: int) -> dict[str, Any]:
    """A level's figures from its sessions."""
    n = len(results)
    failed = [r for r in results if r.error is not None]
    ok = [r for r in results if r.error is None]
    scored = [r for r in ok if r.wer is not None]
    return {
        "sessions": n,
        "completed": len(ok),
        "with_transcript": sum(bool(r.transcript) for r in ok),
        "held_max": held_max,
        "errors": len(failed),
        "error_rate": round(len(failed) / n, 4) if n else 0.0,
        "timeouts": sum(r.timed_out for r in results),
        "timeout_rate": round(sum(r.timed_out for r in results) / n, 4) if n else 0.0,
        "refused": sum(r.refused for r in results),
        "error_codes": dict(Counter(f"{r.error}:{r.code}" for r in failed)),
        "first_partial_ms": _pcts([r.first_partial_ms for r in ok if r.first_partial_ms]),
        "final_latency_ms": _pcts([r.final_latency_ms for r in ok if r.final_latency_ms]),
        "wer": (
            round(word_error_rate([c.reference for c in scored], [c.transcript for c in scored]), 4)
            if scored
            else None
        ),
        "audio_seconds": round(sum(r.audio_seconds for r in results), 2),
    }


def judge(summary: dict[str, Any], criteria: Criteria) -> list[str]:
    """Why a level did not keep up; empty when it did."""
    reasons = []
    if summary["error_rate"] > criteria.max_error_rate:
        reasons.append(f"error rate {summary['error_rate']:.0%} ({summary['error_codes']})")
    p95 = summary["final_latency_ms"]["p95"]
    if p95 is None:
        reasons.append("no final latency measured")
    elif p95 > criteria.max_final_p95_ms:
        reasons.append(f"final latency p95 {p95:.0f} ms > {criteria.max_final_p95_ms:.0f} ms")
    bound = criteria.max_first_partial_p95_ms
    first = summary["first_partial_ms"]["p95"]
    if bound is not None and first is not None and first > bound:
        reasons.append(f"first partial p95 {first:.0f} ms > {bound:.0f} ms")
    return reasons


class _Held:
    """Counts sessions in flight and remembers the most at once."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    @contextlib.contextmanager
    def hold(self) -> Any:
        self.now += 1
        self.max = max(self.max, self.now)
        try:
            yield
        finally:
            self.now -= 1


async def _sample_memory(servers: list[ServerProcess], every: float = 0.5) -> None:
    while True:
        for s in servers:
            s.sample()
        await asyncio.sleep(every)


class _Runner:
    def __init__(
        self,
        config: LoadConfig,
        clips: list[Clip],
        servers: list[ServerProcess],
        progress: Callable[[str], None],
    ) -> None:
        self.config = config
        self.clips = clips
        self.servers = servers
        self.progress = progress
        self.options = RecognitionOptions(word_time_offsets=True)
        self.start = time.monotonic()

    async def _user(
        self, transport: Transport, index: int, level: int, held: _Held
    ) -> list[SessionResult]:
        await asyncio.sleep(index * self.config.stagger_seconds)
        results = []
        for j in range(self.config.clips_per_session):
            clip = self.clips[(index + j * level) % len(self.clips)]
            with held.hold():
                result = await run_session(
                    transport,
                    clip_id=clip.id,
                    pcm=clip.pcm,
                    reference=clip.text,
                    options=self.options,
                    run_start=self.start,
                    slack_seconds=self.config.slack_seconds,
                )
            results.append(result)
        return results

    async def level(self, transport: Transport, level: int) -> dict[str, Any]:
        held = _Held()
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
        summary["session_results"] = [_asdict(r) for r in results]
        return summary

    def _estimate(self, level: int) -> float:
        mean = float(np.mean([c.seconds for c in self.clips]))
        return (level - 1) * self.config.stagger_seconds + self.config.clips_per_session * (
            mean + 3.0
        )

    async def ramp(self, transport: Transport) -> dict[str, Any]:
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

    async def overload(self, transport: Transport, limit: int) -> dict[str, Any]:
        """Hold ``limit`` sessions, then open ``overload_extra`` more at once."""
        # The longest clip, so the admitted sessions are still running when extras arrive.
        clip = max(self.clips, key=lambda c: c.seconds)
        held = _Held()

        async def one(c: Clip) -> SessionResult:
            with held.hold():
                return await run_session(
                    transport,
                    clip_id=c.id,
                    pcm=c.pcm,
                    reference=c.text,
                    options=self.options,
                    run_start=self.start,
                    slack_seconds=self.config.slack_seconds,
                )

        window = CpuWindow(self.servers)
        admitted = [asyncio.create_task(one(clip)) for _ in range(limit)]
        await asyncio.sleep(min(1.0, clip.seconds / 4))  # let every admitted stream open
        extras = await asyncio.gather(*(one(clip) for _ in range(self.config.overload_extra)))
        kept = await asyncio.gather(*admitted)
        processes = window.close()
        refused = [r for r in extras if r.refused]
        refusal_ms = [r.error_after_ms for r in refused if r.error_after_ms is not None]
        kept_summary = summarize(kept, limit)
        clean = (
            len(refused) == len(extras)
            and kept_summary["completed"] == limit
            and kept_summary["with_transcript"] == limit
        )
        return {
            "transport": transport.name,
            "limit": limit,
            "extra": len(extras),
            "admitted": kept_summary,
            "refused": len(refused),
            "refusal_codes": dict(Counter(f"{r.error}:{r.code}" for r in extras if r.error)),
            "time_to_refusal_ms": {
                "p50": None if not refusal_ms else round(float(np.median(refusal_ms)), 1),
                "max": None if not refusal_ms else round(max(refusal_ms), 1),
            },
            "extras_completed": sum(r.error is None for r in extras),
            "clean": clean,
            "processes": processes,
            "session_results": [_asdict(r) for r in [*kept, *extras]],
        }


def _asdict(r: SessionResult) -> dict[str, Any]:
    return asdict(r)


def _check_targets(config: LoadConfig) -> None:
    if config.allow_remote:
        return
    if config.riva_uri is not None and not is_loopback_uri(config.riva_uri):
        raise ValueError(f"{config.riva_uri} is not loopback; pass --allow-remote to use it")
    if config.ws_url is not None and not is_loopback_url(config.ws_url):
        raise ValueError(f"{config.ws_url} is not loopback; pass --allow-remote to use it")


def _grpc_client(uri: str) -> RivaASRClient:
    # One attempt and a breaker that does not open: the load tool measures the server's
    # behaviour (a refusal is RESOURCE_EXHAUSTED at once), not the client's resilience.
    return RivaASRClient(RivaSettings(uri=uri, retry_attempts=1, breaker_fail_max=10_000))


async def _start(riva_limit: int, ws_limit: int | None) -> list[ServerProcess]:
    riva = await start_riva(max_streams=riva_limit)
    servers = [riva]
    if ws_limit is not None:
        try:
            servers.append(await start_gateway(str(riva.address), max_sessions=ws_limit))
        except BaseException:
            await riva.stop()
            raise
    return servers


_ERROR_LOGS: list[str] = []


async def _stop(servers: list[ServerProcess]) -> dict[str, int | None]:
    codes = {s.name: await s.stop() for s in reversed(servers)}
    # A server that logged an error keeps its log; the report points at it.
    _ERROR_LOGS.extend(s.log_path for s in servers if s.had_errors())
    return codes


def _transports(
    config: LoadConfig, riva_uri: str, ws_url: str | None, client: RivaASRClient
) -> list[Transport]:
    out: list[Transport] = []
    for mode in config.modes:
        if mode == "websocket":
            assert ws_url is not None
            out.append(WebSocketTransport(ws_url, max_realtime_factor=None))
        else:
            out.append(GrpcTransport(client))
    return out


async def run_load(
    config: LoadConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the ramp for each mode, then the overload probe; the report as a dict.

    Raises:
        ValueError: A target is not loopback (without ``allow_remote``) or bad config.
        RuntimeError: A server subprocess did not start.
    """
    _check_targets(config)
    say = progress or (lambda _: None)
    clips = load_clips(config.clips_dir, config.max_clip_seconds)
    own = config.riva_uri is None
    wants_ws = "websocket" in config.modes
    if not own and wants_ws and config.ws_url is None:
        raise ValueError("with an external Riva server, the WebSocket mode needs ws_url")
    report: dict[str, Any] = {
        "tool": "python -m load",
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": os.cpu_count(),
            "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        },
        "config": {
            "modes": list(config.modes),
            "levels": list(config.levels),
            "stagger_seconds": config.stagger_seconds,
            "clips_per_session": config.clips_per_session,
            "clips": str(config.clips_dir),
            "clip_count": len(clips),
            "clip_seconds": [round(c.seconds, 2) for c in clips],
            "criteria": {
                "max_final_p95_ms": config.criteria.max_final_p95_ms,
                "max_error_rate": config.criteria.max_error_rate,
                "max_first_partial_p95_ms": config.criteria.max_first_partial_p95_ms,
            },
            "own_servers": own,
        },
        "ramps": [],
        "overload": [],
    }
    started = time.monotonic()
    # Limits above the highest level: the ramp measures the engine, not the limits.
    headroom = max(config.levels) + 2
    servers: list[ServerProcess] = []
    try:
        if own:
            say("starting the embedded Riva server and the WebSocket server ...")
            servers = await _start(headroom, headroom if wants_ws else None)
            riva_uri = str(servers[0].address)
            ws_url = servers[1].address if wants_ws else None
            report["servers"] = {s.name: s.address for s in servers}
        else:
            assert config.riva_uri is not None
            riva_uri, ws_url = config.riva_uri, config.ws_url
        runner = _Runner(config, clips, servers, say)
        async with _grpc_client(riva_uri) as client:
            for transport in _transports(config, riva_uri, ws_url, client):
                report["ramps"].append(await runner.ramp(transport))
        if config.overload and own:
            capacities = [r["capacity"] for r in report["ramps"]]
            limit = config.overload_limit or max(1, min(capacities) if capacities else 1)
            exit_codes = await _stop(servers)
            say(f"overload probe: limits set to {limit}, {config.overload_extra} extra ...")
            servers = await _start(limit, limit if wants_ws else None)
            runner.servers = servers
            riva_uri = str(servers[0].address)
            ws_url = servers[1].address if wants_ws else None
            async with _grpc_client(riva_uri) as client:
                for transport in _transports(config, riva_uri, ws_url, client):
                    probe = await runner.overload(transport, limit)
                    say(
                        f"{transport.name}: overload at {limit}: {probe['refused']}/"
                        f"{probe['extra']} refused {probe['refusal_codes']}, admitted "
                        f"{probe['admitted']['completed']}/{limit} completed"
                    )
                    report["overload"].append(probe)
            report["exit_codes_after_ramp"] = exit_codes
        elif config.overload:
            report["overload_skipped"] = "the probe restarts servers with small limits"
    finally:
        if servers:
            report["exit_codes"] = await _stop(servers)
    report["server_error_logs"] = list(_ERROR_LOGS)
    _ERROR_LOGS.clear()
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    return report
