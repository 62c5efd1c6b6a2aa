"""Latency, CPU and WER of the embedded Riva server at real-time pacing, one build or two A/B.

Usage::

    python scripts/bench_embedded.py --speech DIR [--a TREE] [--b TREE] [--streams 1,4]
        [--clips N] [--sets librispeech_mini,ljspeech32] [--runs-json FILE]

Each build is ``python -m asr riva-local --port 0`` in its own process, with ``PYTHONPATH``
at ``TREE/src`` (default: this tree). Make a base tree with ``git worktree add /tmp/base
<commit>``. Every clip of the speech sets (``--speech`` or ``$ASR_SPEECH_FIXTURES``) is
streamed as a Riva client would send a microphone: 0.5 s of silence, the clip, 3 s of
silence, in 100 ms chunks each sent when its audio has been "recorded", with interim results
and Riva's default endpointing. At ``--streams 4`` four clips stream at once (started 0.3 s
apart). Clips, or groups of four, alternate between the builds, A first then B first
(ABBA), so both see the same machine load.

Per build and concurrency, it prints:

* first partial: arrival of the clip's first interim (or final, if none came) minus the
  speech onset;
* final: arrival of the clip's last final minus the end of speech;
* CPU: the server process's CPU time (user + system, psutil) while the clip streamed,
  including the silence after it, per second of clip audio;
* WER of the finals per set;
* "okay" echoes: clips whose first interim begins with "okay" while the clip does not (an
  echo of the engine's punctuation prompt), as a share of the clips;
* B/A ratios of the medians and of CPU.

Onset and end of speech come from an offline decode of the same clean clip: ``Recognize``
with word time offsets on build A, first word's start and last word's end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
import psutil
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_audio_pb2 as raudio

from asr.audio import float32_to_pcm16, read_audio
from asr.evaluation.corpus import speech_fixtures
from asr.wer import normalize, word_error_rate

RATE = 16_000
LEAD_S = 0.5
TAIL_S = 3.0
STAGGER_S = 0.3
HERE = Path(__file__).resolve().parent.parent


@dataclass
class Clip:
    set: str
    name: str
    audio: np.ndarray
    ref: str
    onset: float = 0.0
    """First word's start in the clip (s), from the offline decode."""
    end: float = 0.0
    """Last word's end in the clip (s)."""

    @property
    def seconds(self) -> float:
        return self.audio.size / RATE


@dataclass
class Run:
    """One clip streamed to one build."""

    clip: Clip
    first: float | None
    final: float | None
    text: str
    first_text: str = ""
    """The first interim (or final) transcript."""


@dataclass
class Tally:
    runs: list[Run] = field(default_factory=list)
    cpu: float = 0.0
    audio: float = 0.0


class Build:
    """An ``asr riva-local`` process serving one source tree."""

    def __init__(self, label: str, tree: Path, extra: list[str]) -> None:
        self.label = label
        self.tree = tree
        self.extra = extra
        env = dict(os.environ, PYTHONPATH=str(tree / "src"))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asr", "riva-local", "--port", "0", *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if "serving on" not in line:
            raise SystemExit(f"{tree}: riva-local did not start: {line!r}")
        self.address = line.split("serving on", 1)[1].strip()
        self.ps = psutil.Process(self.proc.pid)

    def cpu(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def load_sets(speech: Path, names: list[str], limit: int | None) -> list[Clip]:
    clips = []
    for name in names:
        rows = [json.loads(x) for x in (speech / name / "refs.jsonl").read_text().splitlines()]
        for r in rows[:limit]:
            audio = read_audio(speech / name / r["audio"])[0]
            clips.append(Clip(name, r["audio"], audio, r["text"]))
    return clips


async def word_bounds(address: str, clip: Clip) -> None:
    """Speech onset and end of ``clip`` from an offline decode with word times."""
    config = rasr.RecognitionConfig(
        language_code="en-US",
        encoding=raudio.LINEAR_PCM,
        sample_rate_hertz=RATE,
        enable_word_time_offsets=True,
    )
    async with grpc.aio.insecure_channel(address) as channel:
        stub = rasr_grpc.RivaSpeechRecognitionStub(channel)
        response = await stub.Recognize(
            rasr.RecognizeRequest(config=config, audio=float32_to_pcm16(clip.audio))
        )
    words = [w for r in response.results for w in r.alternatives[0].words]
    if not words:
        raise SystemExit(f"{clip.name}: the offline decode found no words")
    clip.onset = words[0].start_time / 1000
    clip.end = words[-1].end_time / 1000


async def stream(address: str, clip: Clip, chunk_ms: int) -> Run:
    config = rasr.StreamingRecognitionConfig(
        config=rasr.RecognitionConfig(
            language_code="en-US",
            encoding=raudio.LINEAR_PCM,
            sample_rate_hertz=RATE,
            enable_automatic_punctuation=True,
        ),
        interim_results=True,
    )
    silence = np.zeros(int(LEAD_S * RATE), np.float32)
    tail = np.zeros(int(TAIL_S * RATE), np.float32)
    pcm = float32_to_pcm16(np.concatenate([silence, clip.audio, tail]))
    step = RATE * chunk_ms // 1000 * 2
    start = time.monotonic()

    async def requests() -> AsyncIterator[rasr.StreamingRecognizeRequest]:
        yield rasr.StreamingRecognizeRequest(streaming_config=config)
        for i, offset in enumerate(range(0, len(pcm), step)):
            # A chunk leaves once all of its audio has been "recorded".
            delay = start + (i + 1) * chunk_ms / 1000 - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            yield rasr.StreamingRecognizeRequest(audio_content=pcm[offset : offset + step])

    first = final = None
    first_text = ""
    finals = []
    async with grpc.aio.insecure_channel(address) as channel:
        stub = rasr_grpc.RivaSpeechRecognitionStub(channel)
        async for response in stub.StreamingRecognize(requests()):
            now = time.monotonic() - start - LEAD_S  # on the clip's clock
            for r in response.results:
                if not r.alternatives or not r.alternatives[0].transcript.strip():
                    continue
                if first is None:
                    first = now - clip.onset
                    first_text = r.alternatives[0].transcript
                if r.is_final:
                    final = now - clip.end
                    finals.append(r.alternatives[0].transcript)
    return Run(clip, first, final, " ".join(finals), first_text)


async def group(build: Build, clips: list[Clip], chunk_ms: int, tally: Tally) -> None:
    async def staggered(i: int, clip: Clip) -> Run:
        await asyncio.sleep(i * STAGGER_S)
        return await stream(build.address, clip, chunk_ms)

    cpu = build.cpu()
    runs = await asyncio.gather(*(staggered(i, c) for i, c in enumerate(clips)))
    tally.cpu += build.cpu() - cpu
    tally.audio += sum(c.seconds for c in clips)
    tally.runs += runs


def run_row(streams: int, label: str, run: Run) -> dict[str, object]:
    """One clip's figures, for ``--runs-json``."""
    return {
        "streams": streams,
        "build": label,
        "clip": f"{run.clip.set}/{run.clip.name}",
        "onset": run.clip.onset,
        "end": run.clip.end,
        "first": run.first,
        "final": run.final,
        "first_text": run.first_text,
        "text": run.text,
    }


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _echo(run: Run) -> bool:
    first = normalize(run.first_text).split()[:1]
    return first == ["okay"] and normalize(run.clip.ref).split()[:1] != ["okay"]


def summary(tally: Tally, sets: list[str]) -> dict[str, float]:
    firsts = [r.first for r in tally.runs if r.first is not None]
    finals = [r.final for r in tally.runs if r.final is not None]
    out = {
        "first p50": statistics.median(firsts),
        "first p95": pct(firsts, 0.95),
        "final p50": statistics.median(finals),
        "final p95": pct(finals, 0.95),
        "cpu/audio": tally.cpu / tally.audio,
        "missing finals": float(len(tally.runs) - len(finals)),
        "okay echoes": sum(map(_echo, tally.runs)) / len(tally.runs),
    }
    for name in sets:
        runs = [r for r in tally.runs if r.clip.set == name]
        if runs:
            out[f"WER {name}"] = 100 * word_error_rate(
                [r.clip.ref for r in runs], [r.text for r in runs]
            )
    return out


def report(streams: int, results: dict[str, Tally], sets: list[str]) -> None:
    rows = {label: summary(t, sets) for label, t in results.items()}
    labels = list(rows)
    print(f"\n{streams} concurrent stream(s), {len(next(iter(results.values())).runs)} clips")
    header = f"  {'':22}" + "".join(f"{label:>10}" for label in labels)
    if len(labels) == 2:
        header += f"{'B/A':>8}"
    print(header)
    for key in rows[labels[0]]:
        line = f"  {key:22}" + "".join(f"{rows[label][key]:10.3f}" for label in labels)
        if len(labels) == 2:
            a, b = rows[labels[0]][key], rows[labels[1]][key]
            absolute = key.startswith(("WER", "missing", "okay"))
            line += f"{b / a:8.2f}" if a and not absolute else ""
            if key.startswith("WER"):
                line += f"{b - a:+8.2f}"
        print(line)
    print("  (latencies in s, CPU in CPU-s per s of clip audio, WER in %, B-A for WER)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    parser.add_argument("--a", type=Path, default=HERE, help="source tree of build A")
    parser.add_argument("--b", type=Path, help="source tree of build B (A/B when given)")
    parser.add_argument("--streams", default="1,4", help="concurrency levels, e.g. 1,4")
    parser.add_argument("--sets", default="librispeech_mini,ljspeech32")
    parser.add_argument("--clips", type=int, help="at most this many clips per set")
    parser.add_argument("--chunk-ms", type=int, default=100)
    parser.add_argument(
        "--runs-json", type=Path, help="also write every clip's figures per build here"
    )
    for name in ("a", "b"):
        parser.add_argument(
            f"--{name}-args",
            default="",
            help=f"extra riva-local flags of build {name.upper()}, e.g. '--max-streams 4'",
        )
    args = parser.parse_args()
    try:
        speech = speech_fixtures(args.speech)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    sets = args.sets.split(",")
    clips = load_sets(speech, sets, args.clips)
    builds = [Build("A", args.a.resolve(), args.a_args.split())]
    if args.b is not None:
        builds.append(Build("B", args.b.resolve(), args.b_args.split()))
    dump: list[dict[str, object]] = []
    try:
        for b in builds:
            print(f"build {b.label}: {b.tree} {' '.join(b.extra)} at {b.address}")
        for clip in clips:
            await word_bounds(builds[0].address, clip)
        total = sum(c.seconds for c in clips)
        print(f"{len(clips)} clips, {total:.0f} s of audio; onsets/ends from build A offline")
        for n in (int(x) for x in args.streams.split(",")):
            results = {b.label: Tally() for b in builds}
            groups = [clips[i : i + n] for i in range(0, len(clips), n)]
            for k, g in enumerate(groups):
                order = builds if k % 2 == 0 else builds[::-1]
                for b in order:
                    await group(b, g, args.chunk_ms, results[b.label])
            report(n, results, sets)
            dump += [run_row(n, label, r) for label, t in results.items() for r in t.runs]
        if args.runs_json:
            args.runs_json.write_text(json.dumps(dump, indent=1))
    finally:
        for b in builds:
            b.close()


if __name__ == "__main__":
    asyncio.run(main())
