"""WebRTC against the WebSocket, side by side in one run: final latency after the end of
speech, and the gateway's CPU per real-time stream.

Usage (from the repository root; run on demand, prints figures)::

    python scripts/bench_webrtc.py [--rounds 3] [--sets jfk] [--limit N] [--json FILE]

The embedded Riva server (``asr riva-local``) and the gateway (``asr serve``, host
candidates on 127.0.0.1) run in their own subprocesses, so the gateway's CPU time
(``/proc/PID/stat``) is its own: the clients (websockets; aiortc's Opus encoder) are this
process. Each clip is streamed in real time in 20 ms frames (a browser's Opus packet),
with 0.5 s of silence before and 2 s after, once over each transport per round, the order
alternating so drift in load hits both. Over the WebSocket the frames are PCM16; over
WebRTC they are a track that aiortc encodes to Opus and the gateway decodes and resamples
(48 kHz stereo to 16 kHz mono).

- **Final latency**: for each final, its arrival minus the moment the audio at its end (the
  last word's, ``word_timestamps``) was sent: the endpointer's pause, the decode and, over
  WebRTC, the jitter buffer.
- **CPU per stream**: the gateway's CPU seconds during the session over the audio seconds
  streamed, as a share of one core; the gateway's idle use over the same wall time is
  printed beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "src"), str(REPO / "server"), str(REPO)]

import numpy as np  # noqa: E402  (after the sys.path line)
from load.procs import ServerProcess, start_riva  # noqa: E402  (after the sys.path line)
from websockets.asyncio.client import connect as ws_connect  # noqa: E402  (after the sys.path line)

from asr.audio import TARGET_SAMPLE_RATE, float32_to_pcm16, read_audio, resample  # noqa: E402  (after the sys.path line)
from asr.evaluation.corpus import load_corpus, speech_fixtures  # noqa: E402  (after the sys.path line)
from asr.evaluation.runner import percentile  # noqa: E402  (after the sys.path line)
from asr.wer import word_error_rate  # noqa: E402  (after the sys.path line)
from asr_server.webrtc.client import FRAME_SECONDS, PcmTrack  # noqa: E402  (after the sys.path line)
from asr_server.webrtc.client import connect as webrtc_connect  # noqa: E402  (after the sys.path line)

LEAD, TAIL = 0.5, 2.0
QUERY = {"interim_results": "true", "word_timestamps": "true"}


def padded(path: Path) -> bytes:
    samples, rate = read_audio(path)
    samples = resample(samples, rate, TARGET_SAMPLE_RATE)
    lead = np.zeros(int(LEAD * TARGET_SAMPLE_RATE), np.float32)
    tail = np.zeros(int(TAIL * TARGET_SAMPLE_RATE), np.float32)
    return float32_to_pcm16(np.concatenate([lead, samples, tail]))


def _sent_at(sent: list[tuple[float, float]], audio_time: float) -> float | None:
    for seconds, at in sent:
        if seconds >= audio_time - 1e-3:
            return at
    return None


def _latencies(
    finals: list[tuple[dict[str, Any], float]], sent: list[tuple[float, float]]
) -> list[float]:
    out = []
    for message, arrived in finals:
        if message["text"] and (at := _sent_at(sent, message["end"])) is not None:
            out.append(arrived - at)
    return out


async def over_websocket(base_url: str, pcm: bytes) -> tuple[list[float], str, float]:
    url = "ws" + base_url.removeprefix("http") + "/v1/audio/transcriptions/stream"
    url += "?" + "&".join(f"{k}={v}" for k, v in QUERY.items())
    loop = asyncio.get_running_loop()
    step = int(TARGET_SAMPLE_RATE * FRAME_SECONDS) * 2
    sent: list[tuple[float, float]] = []
    finals: list[tuple[dict[str, Any], float]] = []
    audio = 0.0
    async with ws_connect(url) as ws:

        async def send() -> None:
            nonlocal audio
            start = loop.time()
            for i, offset in enumerate(range(0, len(pcm), step)):
                if (wait := start + i * FRAME_SECONDS - loop.time()) > 0:
                    await asyncio.sleep(wait)
                chunk = pcm[offset : offset + step]
                await ws.send(chunk)
                sent.append(((offset + len(chunk)) / 2 / TARGET_SAMPLE_RATE, loop.time()))
            await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send())
        async for frame in ws:
            message = json.loads(frame)
            if message["type"] == "transcript.final":
                finals.append((message, loop.time()))
            if message["type"] == "session.end":
                audio = message["audio_seconds"]
        await sender
    return _latencies(finals, sent), " ".join(m["text"] for m, _ in finals), audio


async def over_webrtc(base_url: str, pcm: bytes) -> tuple[list[float], str, float]:
    loop = asyncio.get_running_loop()
    track = PcmTrack(pcm)
    finals: list[tuple[dict[str, Any], float]] = []
    audio = 0.0
    async with await webrtc_connect(base_url, track, query=QUERY) as call:

        async def end() -> None:
            await track.done.wait()
            await call.send({"type": "end"})

        ender = asyncio.create_task(end())
        async for message in call.messages():
            if message["type"] == "transcript.final":
                finals.append((message, loop.time()))
            if message["type"] == "session.end":
                audio = message["audio_seconds"]
                break
        await ender
    return _latencies(finals, track.sent), " ".join(m["text"] for m, _ in finals), audio


def _server_final_latency(base_url: str) -> dict[str, float]:
    """The gateway's own mean final latency per interface (audio arrival to sending)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=10) as response:
        text = response.read().decode()
    sums: dict[str, dict[str, float]] = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            prefix = f'asr_gateway_final_latency_seconds_{part}{{interface="'
            if line.startswith(prefix):
                interface = line[len(prefix) :].split('"', 1)[0]
                sums.setdefault(interface, {})[part] = float(line.rsplit(" ", 1)[1])
    return {k: round(v["sum"] / v["count"], 3) for k, v in sums.items() if v.get("count")}


def _cpu(gateway: ServerProcess) -> float:
    sample = gateway.sample()
    assert sample is not None, "the gateway exited"
    return sample.cpu_seconds


def _summary(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"n": 0, "p50": None, "mean": None, "max": None}
    return {
        "n": len(values),
        "p50": round(percentile(values, 50) or 0.0, 3),
        "mean": round(sum(values) / len(values), 3),
        "max": round(max(values), 3),
    }


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    speech = speech_fixtures(args.speech)
    clips = []
    for name in args.sets.split(","):
        for clip in load_corpus(speech / name)[: args.limit]:
            clips.append((clip.id, clip.text, padded(clip.path)))
    riva = await start_riva(max_streams=2)
    gateway = ServerProcess(
        "gateway",
        [sys.executable, "-m", "asr", "serve", "--host", "127.0.0.1", "--port", "0"]
        + ["--server", str(riva.address)],
        r"API on (http://\S+)",
        env={"ASR_SERVER_WEBRTC__HOST_ADDRESSES": '["127.0.0.1"]'},
    )
    await gateway.start(60)
    base_url = str(gateway.address)
    paths = {"websocket": over_websocket, "webrtc": over_webrtc}
    results: dict[str, dict[str, Any]] = {
        name: {"latency": [], "cpu": 0.0, "audio": 0.0, "wall": 0.0, "refs": [], "hyps": []}
        for name in paths
    }
    try:
        await over_websocket(base_url, clips[0][2][: TARGET_SAMPLE_RATE * 2])  # warm up
        for round_ in range(args.rounds):
            for index, (clip_id, reference, pcm) in enumerate(clips):
                order = list(paths) if (round_ + index) % 2 == 0 else list(paths)[::-1]
                for name in order:
                    before, started = _cpu(gateway), time.monotonic()
                    latencies, text, audio = await paths[name](base_url, pcm)
                    result = results[name]
                    result["cpu"] += _cpu(gateway) - before
                    result["wall"] += time.monotonic() - started
                    result["audio"] += audio
                    result["latency"] += latencies
                    result["refs"].append(reference)
                    result["hyps"].append(text)
                    print(
                        f"{clip_id} {name:9s} finals {[round(x, 3) for x in latencies]} s",
                        flush=True,
                    )
        server_side = _server_final_latency(base_url)
        idle_wall = 5.0
        before = _cpu(gateway)
        await asyncio.sleep(idle_wall)
        idle = (_cpu(gateway) - before) / idle_wall
    finally:
        await gateway.stop()
        await riva.stop()
    report: dict[str, Any] = {"clips": [c[0] for c in clips], "rounds": args.rounds}
    for name, r in results.items():
        report[name] = {
            "final_latency_s": _summary(r["latency"]),
            "wer": round(word_error_rate(r["refs"], r["hyps"]), 4),
            "gateway_cpu_s": round(r["cpu"], 3),
            "audio_s": round(r["audio"], 1),
            "cpu_share_of_core_per_stream": round(r["cpu"] / r["audio"], 4) if r["audio"] else None,
            "idle_cpu_share_of_core": round(idle, 4),
            "gateway_final_latency_mean_s": server_side.get(name),
        }
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sets", default="jfk")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--speech",
        type=Path,
        default=None,
        help="folder of speech sets (default: $ASR_SPEECH_FIXTURES)",
    )
    args = parser.parse_args(argv)
    report = asyncio.run(measure(args))
    for name in ("websocket", "webrtc"):
        r = report[name]
        lat = r["final_latency_s"]
        print(
            f"{name:9s}: final latency after end of speech p50 {lat['p50']} s, mean "
            f"{lat['mean']} s, max {lat['max']} s ({lat['n']} finals); WER {r['wer']}; "
            f"gateway CPU {r['gateway_cpu_s']} s for {r['audio_s']} s of audio = "
            f"{100 * (r['cpu_share_of_core_per_stream'] or 0):.2f} % of a core per stream "
            f"(idle {100 * r['idle_cpu_share_of_core']:.2f} %); the gateway's own final "
            f"latency (audio arrival to sending) mean {r['gateway_final_latency_mean_s']} s"
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
