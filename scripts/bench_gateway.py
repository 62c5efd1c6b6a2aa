"""What the WebSocket layer costs: added latency per result and CPU per real-time stream.

Usage (from the repository root; run on demand, prints figures)::

    python scripts/bench_gateway.py [--sets jfk,librispeech_mini] [--limit N]
        [--echo-seconds 20] [--echo-streams 8] [--json FILE]

Every server runs in its own subprocess (``load.procs``), so the WebSocket server's CPU
time (``/proc/PID/stat``) is its own. Two parts, in one run:

1. **Real engine.** The embedded Riva server (``asr riva-local``) and the WebSocket server
   in front of it. Each clip is streamed at real time (100 ms chunks) once straight to
   Riva over gRPC and once through the WebSocket server, the order alternating clip by
   clip so drift in machine load hits both paths. Per path: time to the first partial and
   final latency (end of speech to final, the golden runner's measure); per clip the
   paired difference WebSocket minus gRPC. The engine's decode timing varies by tens of
   milliseconds from run to run, which is why part 2 exists. The WebSocket server's CPU
   is summed over the WebSocket sessions only and divided by the audio seconds they
   streamed: the share of one core a real-time stream costs it.
2. **Echo backend.** A Riva-compatible servicer that does no recognition (this script with
   ``--echo-server``, its own process): it answers every audio chunk at once with a partial
   naming the chunk, and the end of audio with a final. The round trip chunk -> partial
   on each path then differs only by what the WebSocket layer adds; the distributions of
   both are reported and the added latency is their difference (p50 and p95). Then
   ``--echo-streams`` concurrent real-time streams for ``--echo-seconds`` measure the
   server's CPU per stream at ten results a second (the real engine sends about one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "server"), str(REPO)]

import numpy as np
from load.procs import ServerProcess, start_gateway, start_riva
from load.session import SessionResult, run_session

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, float32_to_pcm16, paced
from asr.client import RivaASRClient
from asr.evaluation.corpus import load_corpus, speech_fixtures
from asr.evaluation.runner import GrpcTransport, Transport, percentile
from asr.evaluation.websocket import WebSocketTransport
from asr.events import Final, Partial
from asr.options import RecognitionOptions
from asr.settings import RivaSettings

SCRIPT = Path(__file__).resolve()
CHUNK_MS = 100


def _pcts(values: list[float]) -> dict[str, float | None]:
    return {
        "p50": None if (v := percentile(values, 50)) is None else round(v, 1),
        "p95": None if (v := percentile(values, 95)) is None else round(v, 1),
        "n": len(values),  # type: ignore[dict-item]
    }


def _diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float | None]:
    return {
        q: None if a[q] is None or b[q] is None else round(a[q] - b[q], 1) for q in ("p50", "p95")
    }


# --- the echo backend ------------------------------------------------------------------


def echo_server() -> int:
    """Serve the echo Riva servicer on 127.0.0.1, a free port; print the address."""
    import grpc
    import riva.client.proto.riva_asr_pb2 as rasr
    import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

    class Echo(rasr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]
        async def StreamingRecognize(
            self, requests: AsyncIterator[Any], context: Any
        ) -> AsyncIterator[Any]:
            index, received = 0, 0
            async for request in requests:
                if not request.audio_content:
                    continue  # the streaming_config request
                received += len(request.audio_content)
                result = rasr.StreamingRecognitionResult(
                    is_final=False, stability=0.5, audio_processed=received / PCM16_BYTES_PER_SECOND
                )
                result.alternatives.add(transcript=f"chunk {index}")
                index += 1
                yield rasr.StreamingRecognizeResponse(results=[result])
            end_ms = received * 1000 // PCM16_BYTES_PER_SECOND
            final = rasr.StreamingRecognitionResult(
                is_final=True, audio_processed=received / PCM16_BYTES_PER_SECOND
            )
            alt = final.alternatives.add(transcript=f"chunks {index}", confidence=1.0)
            alt.words.add(
                word="chunks", start_time=max(0, end_ms - 100), end_time=end_ms, confidence=1.0
            )
            yield rasr.StreamingRecognizeResponse(results=[final])

    async def serve() -> None:
        server = grpc.aio.server()
        rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(Echo(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        stop = asyncio.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            asyncio.get_running_loop().add_signal_handler(sig, stop.set)
        print(f"echo: serving on 127.0.0.1:{port}", flush=True)
        await stop.wait()
        await server.stop(0.5)

    asyncio.run(serve())
    return 0


class _Handover:
    """When each chunk was handed to the transport (before it is sent), and the end."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.end: float | None = None

    async def wrap(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.times.append(time.monotonic())
            yield chunk
        self.end = time.monotonic()


async def echo_round_trips(
    transport: Transport, seconds: float
) -> tuple[list[float], float | None]:
    """Per chunk: handover -> its partial (ms); and end of audio -> final (ms)."""
    pcm = bytes(int(seconds * PCM16_BYTES_PER_SECOND))
    hand = _Handover()
    trips: list[float] = []
    final_ms = None
    source = hand.wrap(paced(chunk_bytes(pcm, CHUNK_MS), PCM16_BYTES_PER_SECOND))
    async for event in transport.stream(source, RecognitionOptions(word_time_offsets=True)):
        now = time.monotonic()
        if isinstance(event, Partial):
            index = int(event.text.split()[-1])
            trips.append((now - hand.times[index]) * 1000)
        elif isinstance(event, Final) and hand.end is not None:
            final_ms = (now - hand.end) * 1000
    return trips, final_ms


def _gateway_cpu(gateway: ServerProcess) -> float:
    sample = gateway.sample()
    assert sample is not None, "the WebSocket server exited"
    return sample.cpu_seconds


async def part_echo(seconds: float, streams: int, rounds: int) -> dict[str, Any]:
    echo = ServerProcess("echo", [sys.executable, str(SCRIPT), "--echo-server"], r"on (\S+)")
    await echo.start(60)
    gateway = await start_gateway(str(echo.address), max_sessions=streams + 4)
    try:
        settings = RivaSettings(uri=str(echo.address), retry_attempts=1)
        async with RivaASRClient(settings) as client:
            paths: list[Transport] = [
                GrpcTransport(client),
                WebSocketTransport(str(gateway.address), max_realtime_factor=None),
            ]
            trips: dict[str, list[float]] = {p.name: [] for p in paths}
            finals: dict[str, list[float]] = {p.name: [] for p in paths}
            for r in range(rounds):
                for path in paths if r % 2 == 0 else paths[::-1]:
                    t, f = await echo_round_trips(path, seconds / rounds)
                    trips[path.name] += t
                    if f is not None:
                        finals[path.name].append(f)
            # CPU: many concurrent real-time WebSocket streams, nothing else running.
            ws = paths[1]
            idle_before = _gateway_cpu(gateway)
            await asyncio.sleep(2.0)
            idle = (_gateway_cpu(gateway) - idle_before) / 2.0
            before, began = _gateway_cpu(gateway), time.monotonic()
            await asyncio.gather(*(echo_round_trips(ws, seconds) for _ in range(streams)))
            cpu = _gateway_cpu(gateway) - before
            wall = time.monotonic() - began
    finally:
        await gateway.stop()
        await echo.stop()
    g, w = _pcts(trips["grpc"]), _pcts(trips["websocket"])
    gf, wf = _pcts(finals["grpc"]), _pcts(finals["websocket"])
    audio = streams * seconds
    return {
        "chunk_to_partial_ms": {"grpc": g, "websocket": w, "added": _diff(w, g)},
        "end_to_final_ms": {"grpc": gf, "websocket": wf, "added": _diff(wf, gf)},
        "cpu": {
            "streams": streams,
            "audio_seconds": audio,
            "wall_seconds": round(wall, 2),
            "gateway_cpu_seconds": round(cpu, 3),
            "gateway_idle_percent_of_core": round(100 * idle, 2),
            "percent_of_core_per_realtime_stream": round(100 * cpu / audio, 3),
            "net_percent_of_core_per_realtime_stream": round(
                100 * max(0.0, cpu - idle * wall) / audio, 3
            ),
            "results_per_stream_second": 1000 / CHUNK_MS,
        },
    }


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
        settings = RivaSettings(uri=str(riva.address), retry_attempts=1)
        async with RivaASRClient(settings) as client:
            paths: list[Transport] = [
                GrpcTransport(client),
                WebSocketTransport(str(gateway.address), max_realtime_factor=None),
            ]
            idle_before = _gateway_cpu(gateway)
            await asyncio.sleep(3.0)
            idle = (_gateway_cpu(gateway) - idle_before) / 3.0  # CPU seconds per second
            start = time.monotonic()
            for i, (clip_id, text, pcm) in enumerate(_clips(speech, sets, limit)):
                for path in paths if i % 2 == 0 else paths[::-1]:
                    before, began = _gateway_cpu(gateway), time.monotonic()
                    result = await run_session(
                        path,
                        clip_id=clip_id,
                        pcm=pcm,
                        reference=text,
                        options=options,
                        run_start=start,
                    )
                    if path.name == "websocket":
                        ws_cpu += _gateway_cpu(gateway) - before
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
        g = _pcts([v for r in results["grpc"] if (v := getattr(r, which)) is not None])
        w = _pcts([v for r in results["websocket"] if (v := getattr(r, which)) is not None])
        diffs = [
            getattr(b, which) - getattr(a, which)
            for a, b in pairs
            if getattr(a, which) is not None and getattr(b, which) is not None
        ]
        out[which] = {
            "grpc": g,
            "websocket": w,
            "added_p50_p95_of_distributions": _diff(w, g),
            "paired_difference": _pcts(diffs)
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
        t, f, c = m["chunk_to_partial_ms"], m["end_to_final_ms"], m["cpu"]
        print("\nEcho backend (no recognition; 100 ms chunks, one partial per chunk):")
        print(
            f"  chunk -> partial  grpc p50/p95 {t['grpc']['p50']}/{t['grpc']['p95']}  "
            f"websocket {t['websocket']['p50']}/{t['websocket']['p95']}  "
            f"added p50/p95 {t['added']['p50']}/{t['added']['p95']} ms  (n={t['grpc']['n']})"
        )
        print(
            f"  end -> final      grpc p50/p95 {f['grpc']['p50']}/{f['grpc']['p95']}  "
            f"websocket {f['websocket']['p50']}/{f['websocket']['p95']}  "
            f"added p50/p95 {f['added']['p50']}/{f['added']['p95']} ms"
        )
        print(
            f"  {c['streams']} concurrent real-time streams, {c['audio_seconds']:.0f} s of audio: "
            f"WebSocket server {c['gateway_cpu_seconds']} s CPU = "
            f"{c['percent_of_core_per_realtime_stream']} % of a core per stream, "
            f"{c['net_percent_of_core_per_realtime_stream']} % without the idle "
            f"{c['gateway_idle_percent_of_core']} %"
        )


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    report: dict[str, Any] = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if not args.no_engine:
        sets = [s for s in args.sets.split(",") if s]
        report["engine"] = await part_engine(args.speech, sets, args.limit)
    if not args.no_echo:
        report["echo"] = await part_echo(args.echo_seconds, args.echo_streams, args.echo_rounds)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sets", default="jfk,librispeech_mini")
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    parser.add_argument("--limit", type=int, help="first N clips of each set")
    parser.add_argument("--echo-seconds", type=float, default=20.0)
    parser.add_argument("--echo-rounds", type=int, default=4, help="alternations of the paths")
    parser.add_argument("--echo-streams", type=int, default=8)
    parser.add_argument("--no-engine", action="store_true")
    parser.add_argument("--no-echo", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        return echo_server()
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
