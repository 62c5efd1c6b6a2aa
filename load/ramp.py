"""A load run: start the servers, ramp each mode, then probe past the limit.

The run starts ``asr riva-local`` and the WebSocket server in subprocesses with limits
above the highest level (the ramp measures the engine, not the limits), ramps each mode
(:mod:`load.levels`), then restarts them with their limits set to the capacity found for
the overload probe (:mod:`load.overload`). With external targets it only ramps.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from asr.client import RivaASRClient
from asr.evaluation.runner import GrpcTransport, Transport
from asr.evaluation.websocket import WebSocketTransport
from asr.settings import BreakerSettings, RetrySettings

from .clips import PcmClip, load_clips
from .config import LoadConfig, check_targets
from .levels import LevelRunner
from .overload import overload
from .procs import ServerProcess, start_gateway, start_riva

__all__ = ["run_load"]


def _grpc_client(uri: str) -> RivaASRClient:
    # One attempt and a breaker that does not open: the load tool measures the server's
    # behaviour (a refusal is RESOURCE_EXHAUSTED at once), not the client's resilience.
    return RivaASRClient(
        uri, retry=RetrySettings(attempts=1), breaker=BreakerSettings(fail_max=10_000)
    )


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


def _addresses(servers: list[ServerProcess]) -> tuple[str, str | None]:
    """The Riva target and the WebSocket URL (``None`` without a gateway) of :func:`_start`."""
    return str(servers[0].address), servers[1].address if len(servers) > 1 else None


async def _stop(servers: list[ServerProcess], error_logs: list[str]) -> dict[str, int | None]:
    codes = {s.name: await s.stop() for s in reversed(servers)}
    # A server that logged an error keeps its log; the report points at it.
    error_logs.extend(s.log_path for s in servers if s.had_errors())
    return codes


def _transports(config: LoadConfig, ws_url: str | None, client: RivaASRClient) -> list[Transport]:
    out: list[Transport] = []
    for mode in config.modes:
        if mode == "websocket":
            assert ws_url is not None
            out.append(WebSocketTransport(ws_url, max_realtime_factor=None))
        else:
            out.append(GrpcTransport(client))
    return out


def _header(config: LoadConfig, clips: list[PcmClip]) -> dict[str, Any]:
    return {
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
            "own_servers": config.riva_uri is None,
        },
        "ramps": [],
        "overload": [],
    }


async def run_load(
    config: LoadConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the ramp for each mode, then the overload probe; the report as a dict.

    Raises:
        ValueError: A target is not loopback (without ``allow_remote``), bad config, or no
            clip short enough.
        FileNotFoundError: The speech set has no ``refs.jsonl``.
        RuntimeError: A server subprocess did not start.
    """
    check_targets(config)
    say = progress or (lambda _: None)
    clips = load_clips(config.clips_dir, config.max_clip_seconds)
    own = config.riva_uri is None
    wants_ws = "websocket" in config.modes
    report = _header(config, clips)
    started = time.monotonic()
    # Limits above the highest level: the ramp measures the engine, not the limits.
    headroom = max(config.levels) + 2
    servers: list[ServerProcess] = []
    error_logs: list[str] = []
    try:
        if own:
            say("starting the embedded Riva server and the WebSocket server ...")
            servers = await _start(headroom, headroom if wants_ws else None)
            riva_uri, ws_url = _addresses(servers)
            report["servers"] = {s.name: s.address for s in servers}
        else:
            assert config.riva_uri is not None
            riva_uri, ws_url = config.riva_uri, config.ws_url
        runner = LevelRunner(config, clips, servers, say)
        async with _grpc_client(riva_uri) as client:
            for transport in _transports(config, ws_url, client):
                report["ramps"].append(await runner.ramp(transport))
        if config.overload and own:
            capacities = [r["capacity"] for r in report["ramps"]]
            limit = config.overload_limit or max(1, min(capacities) if capacities else 1)
            exit_codes = await _stop(servers, error_logs)
            say(f"overload probe: limits set to {limit}, {config.overload_extra} extra ...")
            servers = await _start(limit, limit if wants_ws else None)
            runner.servers = servers
            riva_uri, ws_url = _addresses(servers)
            async with _grpc_client(riva_uri) as client:
                for transport in _transports(config, ws_url, client):
                    probe = await overload(runner, transport, limit)
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
            report["exit_codes"] = await _stop(servers, error_logs)
    report["server_error_logs"] = error_logs
    report["wall_seconds"] = round(time.monotonic() - started, 1)
    return report
