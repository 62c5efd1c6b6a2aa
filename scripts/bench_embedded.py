"""Measure the embedded Riva-compatible server: real-time factor, latencies, decode times.

Usage: python scripts/bench_embedded.py [--clips 12] [--gap 1.5] [--beam 1]

Starts an EmbeddedServer on a free port in this process, streams LJSpeech clips joined by
silence at real time (100 ms chunks) with interim results every second, and prints:

* compute real-time factor: seconds the decode pool was busy / seconds of audio;
* time to first partial, from the start of the stream (speech starts at ~0.1 s);
* final latency: arrival of each final minus the moment its last word's audio was sent;
* whole-clip decode time of the engine (greedy and beam 5), and WER of the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path

import grpc
import numpy as np
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_audio_pb2 as raudio

from asr.audio import float32_to_pcm16, read_audio
from asr.embedded import EmbeddedServer, WhisperEngine
from asr.evaluation.corpus import speech_fixtures
from asr.wer import word_error_rate

RATE = 16_000


def load_clips(speech: Path, n: int) -> tuple[list[np.ndarray], list[str]]:
    folder = speech / "ljspeech32"
    rows = [json.loads(line) for line in (folder / "refs.jsonl").read_text().splitlines()][:n]
    return [read_audio(folder / r["audio"])[0] for r in rows], [r["text"] for r in rows]


async def stream(port: int, pcm: bytes) -> list[tuple[float, rasr.StreamingRecognitionResult]]:
    config = rasr.StreamingRecognitionConfig(
        config=rasr.RecognitionConfig(
            language_code="en-US",
            encoding=raudio.LINEAR_PCM,
            sample_rate_hertz=RATE,
            enable_word_time_offsets=True,
        ),
        interim_results=True,
    )
    chunk = RATE // 10 * 2
    start = time.monotonic()

    async def requests():  # type: ignore[no-untyped-def]
        yield rasr.StreamingRecognizeRequest(streaming_config=config)
        for i, offset in enumerate(range(0, len(pcm), chunk)):
            delay = start + i * 0.1 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield rasr.StreamingRecognizeRequest(audio_content=pcm[offset : offset + chunk])

    out = []
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = rasr_grpc.RivaSpeechRecognitionStub(channel)
        async for response in stub.StreamingRecognize(requests()):
            now = time.monotonic() - start
            out += [(now, r) for r in response.results]
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12)
    parser.add_argument("--gap", type=float, default=1.5, help="silence between clips (s)")
    parser.add_argument("--beam", type=int, default=1)
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    args = parser.parse_args()
    try:
        speech = speech_fixtures(args.speech)
    except FileNotFoundError as exc:
        parser.error(str(exc))

    t = time.perf_counter()
    engine = WhisperEngine(beam_size=args.beam)
    print(f"engine load (cached model, verified hash): {time.perf_counter() - t:.2f} s")
    jfk = read_audio(speech / "jfk" / "jfk.wav")[0]
    engine.transcribe(jfk[:RATE])  # warm-up
    for beam in (1, 5):
        e = WhisperEngine(beam_size=beam)
        times = []
        for _ in range(3):
            t = time.perf_counter()
            e.transcribe(jfk)
            times.append(time.perf_counter() - t)
        print(
            f"whole-clip decode of jfk.wav (11 s), beam {beam}: "
            f"median {statistics.median(times):.2f} s"
        )
    t = time.perf_counter()
    engine.transcribe(jfk[: 2 * RATE], draft=True)
    print(f"draft (partial) decode of 2 s: {time.perf_counter() - t:.2f} s")

    clips, refs = load_clips(speech, args.clips)
    gap = np.zeros(int(args.gap * RATE), np.float32)
    audio = np.concatenate([gap[: RATE // 10]] + [x for c in clips for x in (c, gap)])
    seconds = audio.size / RATE
    async with EmbeddedServer(port=0, engine=engine) as server:
        before = server.decode_stats
        results = await stream(server.port, float32_to_pcm16(audio))
        stats = server.decode_stats
        busy = server.decode_busy_seconds
    finals = [(t, r) for t, r in results if r.is_final]
    partials = [(t, r) for t, r in results if not r.is_final]
    latencies = []
    for t, r in finals:
        words = r.alternatives[0].words
        if words:
            latencies.append(t - words[-1].end_time / 1000)
    hyp = " ".join(r.alternatives[0].transcript for _, r in finals)
    print(
        f"stream: {seconds:.1f} s of audio ({len(clips)} LJSpeech clips, {args.gap} s gaps), "
        f"sent at real time"
    )
    ran, dropped = stats["ran"] - before["ran"], stats["dropped"] - before["dropped"]
    print(
        f"  finals {len(finals)}, partials {len(partials)}; decodes run {ran}, "
        f"dropped as stale {dropped}"
    )
    print(f"  compute real-time factor: {busy / seconds:.3f} (decode pool busy {busy:.1f} s)")
    if partials:
        print(f"  time to first partial: {partials[0][0]:.2f} s after stream start")
    if latencies:
        print(
            f"  final latency after last word: median {statistics.median(latencies):.2f} s, "
            f"max {max(latencies):.2f} s, min {min(latencies):.2f} s"
        )
    print(f"  WER of the stream: {word_error_rate([' '.join(refs)], [hyp]):.3%}")


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
