"""Latency per result through Dynamo vs direct gRPC, side by side in one run.

Starts the embedded Riva-compatible server and one Dynamo ASR worker (file discovery, TCP on
127.0.0.1) as subprocesses with the same engine settings, then streams JFK in real time
(100 ms chunks) through each in turn, alternating, and prints per-result latency: the time
from when the chunk ending at the result's ``audio_processed`` was sent (stream start +
``audio_processed`` - 100 ms: the first chunk goes at once) to when the result arrived.
The difference of the two is what Dynamo adds.

    .venv/bin/python scripts/bench_dynamo.py --rounds 3 --speech /path/to/speech

JFK is ``jfk/jfk.wav`` of the speech sets (``--speech`` or ``$ASR_SPEECH_FIXTURES``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from asr import Final, RecognitionOptions, RivaASRClient, chunk_bytes, load_pcm16, paced
from asr.dynamo import DynamoASRClient
from asr.evaluation.corpus import speech_fixtures

ENDPOINT = "bench.asr.stream"
_CHUNK_SECONDS = 0.1

_GRPC = (
    "from asr.embedded.server import run\n"
    "run(host='127.0.0.1', port=0, decode_workers=1, on_ready=lambda a: print(a, flush=True))\n"
)
_WORKER = (
    "from asr.dynamo.worker import run_worker\n"
    f"run_worker(endpoint={ENDPOINT!r}, discovery_backend='file', decode_workers=1,\n"
    "           on_ready=lambda i: print(i, flush=True))\n"
)


async def start(code: str, env: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        env=os.environ | env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    async with asyncio.timeout(120):
        line = await process.stdout.readline()
    if not line:
        raise RuntimeError(f"server exited with {await process.wait()}")
    return process, line.decode().strip()


async def one_stream(
    client: RivaASRClient | DynamoASRClient, pcm: bytes
) -> tuple[list[float], list[float], str]:
    """Latencies of partials and finals (seconds), and the transcript."""
    partials: list[float] = []
    finals: list[float] = []
    texts: list[str] = []
    options = RecognitionOptions()
    start = time.monotonic()
    async for event in client.stream(paced(chunk_bytes(pcm, 100), 32_000), options):
        latency = time.monotonic() - (start + event.audio_processed - _CHUNK_SECONDS)
        if isinstance(event, Final):
            finals.append(latency)
            texts.append(event.text)
        else:
            partials.append(latency)
    return partials, finals, " ".join(texts)


def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:>8}: none"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
    return (
        f"{name:>8}: n={len(values):3d} median {statistics.median(values) * 1000:7.1f} ms"
        f"  mean {statistics.fmean(values) * 1000:7.1f} ms  p90 {p90 * 1000:7.1f} ms"
    )


async def main(rounds: int, jfk: Path) -> None:
    pcm = load_pcm16(jfk)
    kv = tempfile.mkdtemp(prefix="bench-dynamo-")
    env = {
        "DYN_DISCOVERY_BACKEND": "file",
        "DYN_FILE_KV": kv,
        "DYN_REQUEST_PLANE": "tcp",
        "DYN_TCP_RPC_HOST": "127.0.0.1",
        "DYN_TCP_RESPONSE_STREAM_HOST": "127.0.0.1",
        "DYN_LOG": "warn",
    }
    os.environ.update(env)
    grpc_server, address = await start(_GRPC, env)
    worker, _ = await start(_WORKER, env)
    results: dict[str, tuple[list[float], list[float]]] = {"grpc": ([], []), "dynamo": ([], [])}
    try:
        async with (
            RivaASRClient(uri=address) as riva,
            DynamoASRClient(endpoint=ENDPOINT) as dynamo,
        ):
            await one_stream(riva, pcm[:32_000])  # warm both paths up
            await one_stream(dynamo, pcm[:32_000])
            for n in range(rounds):
                for name, client in (("grpc", riva), ("dynamo", dynamo)):
                    partials, finals, text = await one_stream(client, pcm)
                    results[name][0].extend(partials)
                    results[name][1].extend(finals)
                    print(f"round {n + 1} {name:>6}: {text}")
    finally:
        for process in (grpc_server, worker):
            process.terminate()
            await process.wait()
    print(f"\nlatency per result, JFK paced in real time, {rounds} rounds each:")
    for name, (partials, finals) in results.items():
        print(f"{name}:\n  {summary('partial', partials)}\n  {summary('final', finals)}")
    for kind, index in (("partial", 0), ("final", 1)):
        direct, through = results["grpc"][index], results["dynamo"][index]
        if direct and through:
            added = statistics.median(through) - statistics.median(direct)
            print(f"added by Dynamo, median {kind}: {added * 1000:+.1f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, speech_fixtures(args.speech) / "jfk" / "jfk.wav"))
