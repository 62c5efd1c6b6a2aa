"""One measured session: a clip streamed at real time through a transport.

The figures are the golden runner's (:mod:`asr.evaluation.runner`): *first partial* runs
from sending the first chunk to the first partial; *final latency* from the moment the
audio holding the end of the last word had been sent to the arrival of that final. A
failure is kept with its exception class and stable code (gRPC status name, or the
WebSocket contract's error code), never raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, paced
from asr.errors import ASRError, ResourceExhaustedError
from asr.evaluation.runner import SendClock, Transport
from asr.events import Final, Partial
from asr.options import RecognitionOptions
from asr.wer import normalize, word_error_rate

__all__ = ["InFlight", "SessionResult", "run_session"]

# Codes that mean "the server is full, come back later": the clean refusal.
REFUSAL_CODES = frozenset({"RESOURCE_EXHAUSTED", "too_many_sessions"})


class InFlight:
    """Sessions open now, and the most that were open at once."""

    def __init__(self) -> None:
        self.now = 0
        self.max = 0

    def enter(self) -> None:
        self.now += 1
        self.max = max(self.max, self.now)

    def leave(self) -> None:
        self.now -= 1

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Count one session for the ``with`` block."""
        self.enter()
        try:
            yield
        finally:
            self.leave()


@dataclass(frozen=True, slots=True)
class SessionResult:
    """What happened to one session.

    Attributes:
        transport: ``"grpc"`` or ``"websocket"``.
        clip: The clip's id.
        reference: What was said in it.
        started: Seconds since the run began.
        audio_seconds: Length of the clip.
        wall_seconds: From the first chunk to the end of the session (or the failure).
        first_partial_ms: Time to the first partial.
        final_latency_ms: Last final after the end of speech.
        transcript: Every final's text, joined.
        wer: Against the clip's reference.
        error: Exception class name, ``"Timeout"`` when the session ran past its bound.
        code: The error's stable code.
        refused: Refused for capacity (RESOURCE_EXHAUSTED / too_many_sessions).
        error_after_ms: When the failure came, from the session start.
    """

    transport: str
    clip: str
    reference: str
    started: float
    audio_seconds: float
    wall_seconds: float
    first_partial_ms: float | None
    final_latency_ms: float | None
    transcript: str
    wer: float | None
    error: str | None = None
    code: str | None = None
    refused: bool = False
    error_after_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.final_latency_ms is not None

    @property
    def timed_out(self) -> bool:
        return self.error == "Timeout"


async def run_session(
    transport: Transport,
    *,
    clip_id: str,
    pcm: bytes,
    reference: str,
    options: RecognitionOptions,
    run_start: float,
    slack_seconds: float = 30.0,
    chunk_ms: int = 100,
) -> SessionResult:
    """Stream ``pcm`` at real time through ``transport`` and measure it.

    Args:
        transport: Where the audio goes.
        clip_id: Label of the clip.
        pcm: 16 kHz PCM16 mono audio.
        reference: What was said, for the WER.
        options: Recognition options (word time offsets are needed for the final latency).
        run_start: ``time.monotonic()`` at the start of the run.
        slack_seconds: How long after the clip's length the session may take before it
            counts as timed out.
        chunk_ms: Audio per message.
    """
    audio_seconds = len(pcm) / PCM16_BYTES_PER_SECOND
    clock = SendClock()
    start = time.monotonic()
    first_partial: float | None = None
    final_latency: float | None = None
    finals: list[str] = []
    error: str | None = None
    code: str | None = None
    refused = False
    error_after: float | None = None
    try:
        async with asyncio.timeout(audio_seconds + slack_seconds):
            source = clock.wrap(paced(chunk_bytes(pcm, chunk_ms), PCM16_BYTES_PER_SECOND))
            async for event in transport.stream(source, options):
                now = time.monotonic()
                if isinstance(event, Partial):
                    if first_partial is None and clock.times:
                        first_partial = (now - clock.times[0]) * 1000
                    continue
                assert isinstance(event, Final)
                if event.text:
                    finals.append(event.text)
                end = event.end_ms
                sent = clock.sent_at(end) if end is not None else None
                if sent is not None:
                    final_latency = (now - sent) * 1000
    except TimeoutError:
        error, code = "Timeout", None
        error_after = (time.monotonic() - start) * 1000
    except ASRError as exc:
        error, code = type(exc).__name__, exc.code
        refused = isinstance(exc, ResourceExhaustedError) and exc.code in REFUSAL_CODES
        error_after = (time.monotonic() - start) * 1000
    transcript = " ".join(finals)
    wer = (
        word_error_rate([reference], [transcript])
        if error is None and normalize(reference)
        else None
    )
    return SessionResult(
        transport=transport.name,
        clip=clip_id,
        reference=reference,
        started=round(start - run_start, 3),
        audio_seconds=round(audio_seconds, 3),
        wall_seconds=round(time.monotonic() - start, 3),
        first_partial_ms=first_partial,
        final_latency_ms=final_latency,
        transcript=transcript,
        wer=wer,
        error=error,
        code=code,
        refused=refused,
        error_after_ms=error_after,
    )
