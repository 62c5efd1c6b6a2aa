"""Stream clips through a transport and measure what a user would notice.

Per clip: the transcript and its WER, the time to the first partial, the final latency
after the end of speech, the number of partials, and any error.

*Time to first partial* runs from sending the first audio chunk to receiving the first
partial. *Final latency* runs from the moment the audio holding the end of an utterance's
last word had been sent (word times come with each final) to the moment that final
arrived; the clip's figure is its last final's. Under real-time pacing these are what a
person speaking would wait.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from ..audio import (
    PCM16_BYTES_PER_SECOND,
    TARGET_SAMPLE_RATE,
    aiter_any,
    chunk_bytes,
    float32_to_pcm16,
    paced,
)
from ..client import RivaASRClient
from ..errors import ASRError
from ..events import Final, Partial
from ..options import RecognitionOptions
from ..wer import normalize, word_error_rate
from .corpus import Clip

__all__ = [
    "ClipResult",
    "GrpcTransport",
    "SendClock",
    "SetResult",
    "Transport",
    "percentile",
    "run_set",
]


class Transport(Protocol):
    """A path from audio to recognition events (direct gRPC, WebSocket, ...)."""

    name: str

    def stream(
        self,
        audio: AsyncIterator[bytes],
        options: RecognitionOptions,
    ) -> AsyncIterator[Partial | Final]:
        """Stream 16 kHz PCM16 mono ``audio``; yield events until the stream ends."""
        ...


class GrpcTransport:
    """Straight to a Riva endpoint with :class:`~asr.client.RivaASRClient`."""

    name = "grpc"

    def __init__(self, client: RivaASRClient) -> None:
        self.client = client

    def stream(
        self,
        audio: AsyncIterator[bytes],
        options: RecognitionOptions,
    ) -> AsyncIterator[Partial | Final]:
        return self.client.stream(audio, options)


@dataclass(frozen=True, slots=True)
class ClipResult:
    """What happened to one clip."""

    id: str
    reference: str
    hypothesis: str
    wer: float | None
    partials: int
    finals: int
    first_partial_ms: float | None
    final_latency_ms: float | None
    audio_seconds: float
    wall_seconds: float
    error: str | None = None


@dataclass(frozen=True, slots=True)
class SetResult:
    """A set's clips and their aggregate figures."""

    name: str
    transport: str
    condition: str
    realtime: bool
    clips: tuple[ClipResult, ...]
    wer: float | None = field(init=False)

    def __post_init__(self) -> None:
        scored = [c for c in self.clips if c.error is None and normalize(c.reference)]
        value = (
            word_error_rate([c.reference for c in scored], [c.hypothesis for c in scored])
            if scored
            else None
        )
        object.__setattr__(self, "wer", value)

    @property
    def errors(self) -> int:
        return sum(c.error is not None for c in self.clips)

    def latencies(self, which: str) -> list[float]:
        """``"first_partial_ms"`` or ``"final_latency_ms"`` of every clip that has one."""
        return [v for c in self.clips if (v := getattr(c, which)) is not None]


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100), linear interpolation; ``None`` for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


class SendClock:
    """Remembers when each byte offset of the audio had been handed to the transport."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.times: list[float] = []

    async def wrap(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        sent = 0
        async for chunk in chunks:
            yield chunk
            sent += len(chunk)
            self.offsets.append(sent)
            self.times.append(time.monotonic())

    @property
    def first(self) -> float | None:
        return self.times[0] if self.times else None

    def sent_at(self, ms: int) -> float | None:
        """When the audio up to ``ms`` into the stream had been sent."""
        index = bisect.bisect_left(self.offsets, ms * PCM16_BYTES_PER_SECOND // 1000)
        return self.times[min(index, len(self.times) - 1)] if self.times else None


async def run_clip(
    transport: Transport,
    clip: Clip,
    samples: npt.NDArray[np.float32],
    *,
    options: RecognitionOptions,
    realtime: bool,
    chunk_ms: int = 100,
) -> ClipResult:
    """Stream one clip and measure it; errors are recorded, not raised."""
    pcm = float32_to_pcm16(samples)
    chunks = chunk_bytes(pcm, chunk_ms)
    source = paced(chunks, PCM16_BYTES_PER_SECOND) if realtime else aiter_any(chunks)
    clock = SendClock()
    start = time.monotonic()
    partials, finals = 0, []
    first_partial: float | None = None
    last_final_latency: float | None = None
    error = None
    try:
        async for event in transport.stream(clock.wrap(source), options):
            now = time.monotonic()
            if isinstance(event, Partial):
                partials += 1
                if first_partial is None and clock.first is not None:
                    first_partial = (now - clock.first) * 1000
                continue
            finals.append(event)
            end = event.end_ms
            sent = clock.sent_at(end) if end is not None else None
            if sent is not None:
                last_final_latency = (now - sent) * 1000
    except ASRError as exc:
        error = f"{type(exc).__name__}: {exc}"
    hypothesis = " ".join(f.text for f in finals if f.text)
    wer = (
        word_error_rate([clip.text], [hypothesis])
        if error is None and normalize(clip.text)
        else None
    )
    return ClipResult(
        id=clip.id,
        reference=clip.text,
        hypothesis=hypothesis,
        wer=wer,
        partials=partials,
        finals=len(finals),
        first_partial_ms=first_partial,
        final_latency_ms=last_final_latency,
        audio_seconds=len(samples) / TARGET_SAMPLE_RATE,
        wall_seconds=time.monotonic() - start,
        error=error,
    )


Condition = Callable[[npt.NDArray[np.float32], int], npt.NDArray[np.float32]]


async def run_set(
    transport: Transport,
    clips: Sequence[Clip],
    *,
    name: str,
    realtime: bool = False,
    condition: str = "clean",
    transform: Condition | None = None,
    options: RecognitionOptions | None = None,
    progress: Callable[[ClipResult], None] | None = None,
) -> SetResult:
    """Stream every clip of a set, one after another, and gather the results.

    Args:
        transport: Where the audio goes.
        clips: The set's clips.
        name: The set's name, for the report.
        realtime: Pace audio at real time (latency figures mean what a speaker waits).
        condition: Label of ``transform`` for the report (``"clean"``, ``"pink@10dB"``).
        transform: Changes each clip's samples before sending (noise, gain); gets the
            samples and the clip's index, the latter to seed noise reproducibly.
        options: Recognition options; word time offsets are always asked for, as the final
            latency needs them.
        progress: Called with each clip's result as it completes.
    """
    base = options or RecognitionOptions()
    options = base.model_copy(update={"word_time_offsets": True})
    results = []
    for index, clip in enumerate(clips):
        samples = clip.samples()
        if transform is not None:
            samples = transform(samples, index)
        result = await run_clip(transport, clip, samples, options=options, realtime=realtime)
        results.append(result)
        if progress is not None:
            progress(result)
    return SetResult(
        name=name,
        transport=transport.name,
        condition=condition,
        realtime=realtime,
        clips=tuple(results),
    )
