"""What each WebSocket path adds over direct gRPC, on the echo backend (:mod:`load.echo`).

Two measures, each interleaved across the paths so drift in machine load hits all alike:

- **Round trips.** One real-time stream at a time, the paths in turn (the order rotating
  every round): per chunk, the time from handing it to the transport to its partial
  arriving, and end of audio -> final. The added latency of a path is its p50/p95 minus
  direct gRPC's.
- **CPU per real-time stream.** ``n`` concurrent real-time streams through one path while
  the others are idle; the CPU seconds of the process serving that path over the audio
  seconds streamed is the share of one core one real-time stream costs it. Repeated,
  the paths rotating, for the spread.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, paced
from asr.evaluation.runner import Transport, percentile
from asr.events import Final, Partial
from asr.options import RecognitionOptions

from .procs import ServerProcess

__all__ = ["CHUNK_MS", "EchoPath", "cpu_matrix", "cpu_seconds", "pcts", "round_trips", "rotated"]

CHUNK_MS = 100
"""Audio per chunk, so per partial of the echo backend: ten results a second."""


@dataclass(frozen=True, slots=True)
class EchoPath:
    """A way to the echo backend and the process whose CPU it costs.

    Attributes:
        transport: The client side.
        server: The process between client and backend (``None``: direct gRPC).
    """

    transport: Transport
    server: ServerProcess | None

    @property
    def name(self) -> str:
        return self.transport.name


def rotated(items: Sequence[EchoPath], by: int) -> list[EchoPath]:
    """``items`` started at index ``by`` (modulo its length)."""
    k = by % len(items)
    return [*items[k:], *items[:k]]


def pcts(values: list[float]) -> dict[str, float | None]:
    """p50, p95 (rounded to 0.1) and the count."""
    p50, p95 = percentile(values, 50), percentile(values, 95)
    return {
        "p50": None if p50 is None else round(p50, 1),
        "p95": None if p95 is None else round(p95, 1),
        "n": len(values),
    }


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


async def round_trips(transport: Transport, seconds: float) -> tuple[list[float], float | None]:
    """One real-time stream of silence: per chunk handover -> its partial (ms), and end of
    audio -> final (ms; ``None`` when no final came)."""
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


def cpu_seconds(server: ServerProcess) -> float:
    sample = server.sample()
    if sample is None:
        raise RuntimeError(f"{server.name} exited; see {server.log_path}")
    return sample.cpu_seconds


async def _idle(servers: list[ServerProcess], seconds: float = 3.0) -> dict[str, float]:
    """Each server's CPU with no session open (timers), in CPU seconds per second."""
    before = {s.name: cpu_seconds(s) for s in servers}
    await asyncio.sleep(seconds)
    return {s.name: (cpu_seconds(s) - before[s.name]) / seconds for s in servers}


async def _window(path: EchoPath, streams: int, seconds: float) -> tuple[float, float]:
    """CPU seconds of the path's server and wall seconds of ``streams`` concurrent
    real-time streams of ``seconds`` each."""
    assert path.server is not None
    before, began = cpu_seconds(path.server), time.monotonic()
    await asyncio.gather(*(round_trips(path.transport, seconds) for _ in range(streams)))
    return cpu_seconds(path.server) - before, time.monotonic() - began


def _summary(shares: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(shares), 3),
        "min": round(min(shares), 3),
        "max": round(max(shares), 3),
        "runs": [round(s, 3) for s in shares],
    }


async def cpu_matrix(
    paths: list[EchoPath], levels: list[int], seconds: float, repeats: int
) -> dict[str, Any]:
    """CPU per real-time stream (% of one core) of each path at each level of concurrent
    streams, ``repeats`` interleaved windows each; gross, and net of the server's idle
    CPU over the window's wall time."""
    servers = list({id(p.server): p.server for p in paths if p.server is not None}.values())
    idle = await _idle(servers)
    out: dict[str, Any] = {
        "seconds_per_stream": seconds,
        "idle_percent_of_core": {k: round(100 * v, 3) for k, v in idle.items()},
        "levels": {},
    }
    for streams in levels:
        gross: dict[str, list[float]] = {p.name: [] for p in paths}
        net: dict[str, list[float]] = {p.name: [] for p in paths}
        for r in range(repeats):
            for path in rotated(paths, r):
                assert path.server is not None
                cpu, wall = await _window(path, streams, seconds)
                audio = streams * seconds
                gross[path.name].append(100 * cpu / audio)
                net[path.name].append(100 * max(0.0, cpu - idle[path.server.name] * wall) / audio)
        out["levels"][str(streams)] = {
            name: {"gross": _summary(gross[name]), "net": _summary(net[name])} for name in gross
        }
    return out
