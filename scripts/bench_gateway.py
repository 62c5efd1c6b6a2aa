"""What the WebSocket layer costs: added latency per result and CPU per real-time stream.

Usage (from the repository root; run on demand, prints figures)::

    python scripts/bench_gateway.py [--sets jfk,librispeech_mini] [--limit N]
        [--echo-seconds 20] [--echo-streams 1,16] [--echo-repeats 3]
        [--bridge /work/bridge] [--baseline /tmp/gateway-a] [--profile FILE] [--json FILE]

Every server runs in its own subprocess (``load.procs``), so each one's CPU time
(``/proc/PID/stat``) is its own. Two parts, in one run:

1. **Real engine.** The embedded Riva server (``asr riva-local``) and the WebSocket server
   in front of it. Each clip is streamed at real time (100 ms chunks) once straight to
   Riva over gRPC and once through the own contract, the order alternating clip by clip
   so drift in machine load hits both paths. Per path: time to the first partial and
   final latency (end of speech to final, the golden runner's measure); per clip the
   paired difference WebSocket minus gRPC. The WebSocket server's CPU is summed over the
   WebSocket sessions only and divided by the audio seconds they streamed: the share of
   one core a real-time stream costs it.
2. **Echo backend** (:mod:`load.echo`: a Riva servicer that answers every 100 ms chunk at
   once with a partial naming it, and the end of audio with a final; see
   :mod:`load.echo_bench`). The paths: direct gRPC; the own contract
   (``/v1/audio/transcriptions/stream``); NVIDIA's NIM realtime interface
   (``/v1/realtime?intent=transcription``, :mod:`load.realtime_client`, the event flow of
   NVIDIA's client); with ``--baseline DIR`` both of those again on the gateway of another
   checkout (an A/B of a change, in the same run); with ``--bridge DIR`` NVIDIA's Node
   ``websocket-bridge`` in front of the same echo servicer (:mod:`load.bridge`; it speaks
   the AudioCodes protocol over WSS); and :mod:`load.bare_relay`, the thinnest relay on
   the gateway's stack (uvicorn, Starlette, grpc.aio, nothing else), the floor of what the
   gateway's own code can save. The chunk -> partial round trip of each path minus
   gRPC's is its added latency (p50, p95). Then, at each level of ``--echo-streams``,
   that many concurrent real-time streams through one path at a time, the paths rotating,
   ``--echo-repeats`` times: the serving process's CPU seconds over the audio seconds is
   its CPU per real-time stream (% of one core; median and range of the runs, and net of
   the process's idle CPU). ``--profile FILE`` runs this checkout's gateway under
   :mod:`cProfile`.

NVIDIA's bridge is not part of the project; get it outside the repository::

    git clone https://github.com/nvidia-riva/websocket-bridge /work/bridge
    cd /work/bridge && npm install --ignore-scripts
    npm install --no-save --ignore-scripts grpc@npm:@grpc/grpc-js@1.7.3

(the last line because its ``riva_client/asr.js`` requires the old native ``grpc``
package, which does not build on Node 20; ``@grpc/grpc-js`` has the same API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "server"), str(REPO)]

import numpy as np
from load.bare_relay import BareRelayTransport
from load.bridge import BridgeTransport, start_bridge
from load.echo_bench import EchoPath, cpu_matrix, cpu_seconds, pcts, rotated, round_trips
from load.procs import ServerProcess, start_gateway, start_riva
from load.realtime_client import RealtimeTransport, realtime_url
from load.session import SessionResult, run_session

from asr.audio import float32_to_pcm16
from asr.client import RivaASRClient
from asr.evaluation.corpus import load_corpus, speech_fixtures
from asr.evaluation.runner import GrpcTransport, Transport
from asr.evaluation.websocket import WebSocketTransport
from asr.options import RecognitionOptions
from asr.settings import RetrySettings, RivaSettings


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    return {
        q: None if a[q] is None or b[q] is None else round(a[q] - b[q], 1) for q in ("p50", "p95")
    }


# --- the echo backend ------------------------------------------------------------------


async def _echo_paths(
    args: argparse.Namespace, echo: str, client: RivaASRClient, servers: list[ServerProcess]
) -> list[EchoPath]:
    """Direct gRPC, then each WebSocket path with the process that serves it."""
    sessions = max(args.echo_streams) + 4
    gateway = await start_gateway(echo, max_sessions=sessions, profile=args.profile)
    servers.append(gateway)
    url = str(gateway.address)
    paths = [
        EchoPath(GrpcTransport(client), None),
        EchoPath(WebSocketTransport(url, max_realtime_factor=None), gateway),
        EchoPath(RealtimeTransport(realtime_url(url)), gateway),
    ]
    if args.baseline is not None:
        base = await start_gateway(echo, max_sessions=sessions, name="baseline", repo=args.baseline)
        servers.append(base)
        own = WebSocketTransport(str(base.address), max_realtime_factor=None)
        own.name = "websocket@baseline"
        paths.append(EchoPath(own, base))
        rt = RealtimeTransport(realtime_url(str(base.address)), name="realtime@baseline")
        paths.append(EchoPath(rt, base))
    relay = ServerProcess(
        "bare-relay",
        [sys.executable, "-m", "load.bare_relay", "--riva", echo],
        r"serving on (\S+)",
    )
    await relay.start(60)
    servers.append(relay)
    paths.append(EchoPath(BareRelayTransport(str(relay.address)), relay))
    if args.bridge is not None:
        bridge = await start_bridge(args.bridge, echo)
        servers.append(bridge)
        paths.append(EchoPath(BridgeTransport(str(bridge.address)), bridge))
    return paths


async def part_echo(args: argparse.Namespace) -> dict[str, Any]:
    echo = ServerProcess("echo", [sys.executable, "-m", "load.echo"], r"on (\S+)")
    await echo.start(60)
    servers: list[ServerProcess] = [echo]
    try:
        settings = RivaSettings(uri=str(echo.address), retry=RetrySettings(attempts=1))
        async with RivaASRClient(settings=settings) as client:
            paths = await _echo_paths(args, str(echo.address), client, servers)
            trips: dict[str, list[float]] = {p.name: [] for p in paths}
            finals: dict[str, list[float]] = {p.name: [] for p in paths}
            for r in range(args.echo_rounds):
                for path in rotated(paths, r):
                    t, f = await round_trips(path.transport, args.echo_seconds / args.echo_rounds)
                    trips[path.name] += t
                    if f is not None:
                        finals[path.name].append(f)
            cpu = await cpu_matrix(
                [p for p in paths if p.server is not None],
                args.echo_streams,
                args.echo_seconds,
                args.echo_repeats,
            )
    finally:
        for server in reversed(servers):
            await server.stop()
    out: dict[str, Any] = {"chunk_to_partial_ms": {}, "end_to_final_ms": {}, "cpu": cpu}
    for key, values in (("chunk_to_partial_ms", trips), ("end_to_final_ms", finals)):
        grpc = pcts(values["grpc"])
        for name, v in values.items():
            d = pcts(v)
            out[key][name] = d if name == "grpc" else d | {"added": _diff(d, grpc)}
    return out


# --- the real engine ---------------------------------------------------------------------


def _clips(speech: Path, sets: list[str], limit: int | None) -> Iterator[tuple[str, str, bytes]]:
    for name in sets:
        for clip in load_corpus(speech / name)[:limit]:
            yield clip.id, clip.text, float32_to_pcm16(clip.samples())


async def part_engine(speech: Path, sets: list[str], limit: int | None) -> dict[str, Any]:
    riva = await start_riva(max_streams=8)
    gateway = await start_gateway(str(riva.address), max_sessions=8)
    options = RecognitionOptions(word_time_offsets=True)
    results: dict[str, list[SessionResult]] = {"grpc": [], "websocket": []}
    ws_cpu = 0.0
    ws_audio = 0.0
    ws_wall = 0.0
    try:
        settings = RivaSettings(uri=str(riva.address), retry=RetrySettings(attempts=1))
        async with RivaASRClient(settings=settings) as client:
            paths: list[Transport] = [
                GrpcTransport(client),
                WebSocketTransport(str(gateway.address), max_realtime_factor=None),
            ]
            idle_before = cpu_seconds(gateway)
            await asyncio.sleep(3.0)
            idle = (cpu_seconds(gateway) - idle_before) / 3.0  # CPU seconds per second
            start = time.monotonic()
            for i, (clip_id, text, pcm) in enumerate(_clips(speech, sets, limit)):
                for path in paths if i % 2 == 0 else paths[::-1]:
                    before, began = cpu_seconds(gateway), time.monotonic()
                    result = await run_session(
                        path,
                        clip_id=clip_id,
                        pcm=pcm,
                        reference=text,
                        options=options,
                        run_start=start,
                    )
                    if path.name == "websocket":
                        ws_cpu += cpu_seconds(gateway) - before
                        ws_audio += result.audio_seconds
                        ws_wall += time.monotonic() - began
                    results[path.name].append(result)
                    print(
                        f"  {path.name:9} {clip_id:22} first partial "
                        f"{result.first_partial_ms or float('nan'):6.0f} ms  final "
                        f"{result.final_latency_ms or float('nan'):6.0f} ms  "
                        f"{result.error or ''}",
                        file=sys.stderr,
                    )
        riva_cpu = riva.sample()
    finally:
        await gateway.stop()
        await riva.stop()
    pairs = [
        (g, w) for g, w in zip(results["grpc"], results["websocket"], strict=True) if g.ok and w.ok
    ]
    out: dict[str, Any] = {"clips": len(results["grpc"]), "paired": len(pairs)}
    for which in ("first_partial_ms", "final_latency_ms"):
        g = pcts([v for r in results["grpc"] if (v := getattr(r, which)) is not None])
        w = pcts([v for r in results["websocket"] if (v := getattr(r, which)) is not None])
        diffs = [
            getattr(b, which) - getattr(a, which)
            for a, b in pairs
            if getattr(a, which) is not None and getattr(b, which) is not None
        ]
        out[which] = {
            "grpc": g,
            "websocket": w,
            "added_p50_p95_of_distributions": _diff(w, g),
            "paired_difference": pcts(diffs)
            | {"mean": round(float(np.mean(diffs)), 1) if diffs else None},
        }
    out["errors"] = {k: sum(not r.ok for r in v) for k, v in results.items()}
    out["same_transcripts"] = sum(a.transcript == b.transcript for a, b in pairs)
    out["gateway_cpu"] = {
        "cpu_seconds": round(ws_cpu, 3),
        "audio_seconds": round(ws_audio, 2),
        "wall_seconds": round(ws_wall, 2),
        "percent_of_core_per_realtime_stream": round(100 * ws_cpu / ws_audio, 3)
        if ws_audio
        else None,
        # What the server burns with no session open (timers), over the same wall time,
        # taken out: the cost a stream adds.
        "idle_percent_of_core": round(100 * idle, 3),
        "net_percent_of_core_per_realtime_stream": round(
            100 * max(0.0, ws_cpu - idle * ws_wall) / ws_audio, 3
        )
        if ws_audio
        else None,
    }
    out["riva_cpu_seconds_total"] = riva_cpu.cpu_seconds if riva_cpu else None
    return out


def _print(report: dict[str, Any]) -> None:
    e, m = report.get("engine"), report.get("echo")
    if e:
        print(f"\nReal engine ({e['clips']} clips, real time, alternating paths):")
        for which in ("first_partial_ms", "final_latency_ms"):
            d = e[which]
            print(
                f"  {which:17} grpc p50/p95 {d['grpc']['p50']}/{d['grpc']['p95']}  "
                f"websocket p50/p95 {d['websocket']['p50']}/{d['websocket']['p95']}  "
                f"paired ws-grpc p50/p95 {d['paired_difference']['p50']}/"
                f"{d['paired_difference']['p95']} (mean {d['paired_difference']['mean']})"
            )
        c = e["gateway_cpu"]
        print(
            f"  WebSocket server CPU: {c['cpu_seconds']} s for {c['audio_seconds']} s of audio "
            f"= {c['percent_of_core_per_realtime_stream']} % of a core per real-time stream "
            f"({c['net_percent_of_core_per_realtime_stream']} % without the idle "
            f"{c['idle_percent_of_core']} %)"
        )
        print(
            f"  errors {e['errors']}, identical transcripts {e['same_transcripts']}/{e['paired']}"
        )
    if m:
        print("\nEcho backend (no recognition; 100 ms chunks, one partial per chunk):")
        for key, label in (
            ("chunk_to_partial_ms", "chunk -> partial"),
            ("end_to_final_ms", "end -> final"),
        ):
            for name, d in m[key].items():
                added = d.get("added") or {}
                print(
                    f"  {label:16} {name:19} p50/p95 {d['p50']}/{d['p95']} ms (n={d['n']})"
                    + (f"  added {added['p50']}/{added['p95']} ms" if added else "")
                )
        c = m["cpu"]
        print(
            f"  CPU per real-time stream, % of one core (median [min-max] of the runs; "
            f"idle {c['idle_percent_of_core']} %):"
        )
        for level, by_path in c["levels"].items():
            for name, d in by_path.items():
                g, n = d["gross"], d["net"]
                print(
                    f"  {level:>3} streams {name:19} {g['median']} [{g['min']}-{g['max']}]"
                    f"  net of idle {n['median']} [{n['min']}-{n['max']}]"
                )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if not args.no_engine:
        sets = [s for s in args.sets.split(",") if s]
        report["engine"] = await part_engine(args.speech, sets, args.limit)
    if not args.no_echo:
        report["echo"] = await part_echo(args)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sets", default="jfk,librispeech_mini")
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    parser.add_argument("--limit", type=int, help="first N clips of each set")
    parser.add_argument("--echo-seconds", type=float, default=20.0)
    parser.add_argument("--echo-rounds", type=int, default=4, help="alternations of the paths")
    parser.add_argument(
        "--echo-streams",
        type=lambda v: [int(n) for n in v.split(",")],
        default=[1, 16],
        help="levels of concurrent real-time streams for the CPU figures (1,16)",
    )
    parser.add_argument("--echo-repeats", type=int, default=3, help="CPU windows per path")
    parser.add_argument("--bridge", type=Path, help="NVIDIA's websocket-bridge checkout")
    parser.add_argument("--baseline", type=Path, help="another checkout's gateway, to compare")
    parser.add_argument("--profile", type=Path, help="cProfile the gateway into this file")
    parser.add_argument("--no-engine", action="store_true")
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    for folder in ("bridge", "baseline"):
        if getattr(args, folder) is not None:
            setattr(args, folder, getattr(args, folder).resolve())
    if not args.no_engine:
        try:
            args.speech = speech_fixtures(args.speech)
        except FileNotFoundError as exc:
            parser.error(str(exc))
    report = asyncio.run(measure(args))
    _print(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
