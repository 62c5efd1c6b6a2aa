"""Per-session limits and the ingest-rate check, without I/O (the clock is passed in)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from asr.contract import LimitsInfo

__all__ = ["IngestRate", "Limits"]


class Limits(BaseModel):
    """What one server accepts.

    Attributes:
        max_sessions: Concurrent sessions; one more is refused with ``too_many_sessions``.
        backend_streams: Concurrent streams the Riva backend takes (all its clients
            together); sessions past it are refused at the door like ``max_sessions``.
            ``None`` learns it from Riva's RESOURCE_EXHAUSTED (see
            :mod:`asr_server.capacity`).
        queue_size: Sessions that may wait for a place once ``max_sessions`` (or the
            backend's capacity) is reached, first come first served; one more is refused
            with ``too_many_sessions``. 0 (the default) queues none: every session past
            the limits is refused at once.
        queue_timeout_seconds: How long a queued session waits for a place before it is
            refused with ``too_many_sessions``.
        max_session_seconds: Wall-clock length of a session.
        idle_timeout_seconds: Close a session after this long without a client message.
        max_frame_bytes: Largest frame accepted (binary or text).
        max_realtime_factor: Sustained audio rate allowed, in seconds of audio per second.
            A microphone sends at 1; uploading a recording as fast as possible is refused
            because the backend decodes at about real time and would fall behind.
        burst_seconds: Audio that may arrive ahead of ``max_realtime_factor`` (network
            stalls deliver audio in bursts).
        max_outbound_bytes: Messages waiting to be written to a client that does not read
            them; beyond this the session is closed with ``client_too_slow``.
        final_timeout_seconds: How long Riva may go without any progress (no response
            at all: partial, final, or one without transcript) while it owes an answer,
            after ``finalize`` until it has processed the forced end and after ``end``
            (or a shutdown) until its last final, before the session is closed with
            ``backend_unavailable``. A slow backend that keeps answering is waited for;
            a stalled one ends in an error, not a hang.
        min_finalize_audio_seconds: Audio that must arrive after one forced endpoint
            (or the session start) before ``finalize`` forces the next. An earlier
            ``finalize`` is not applied while audio goes on (it flows into the utterance
            in progress, which ends at its next endpoint); only if no audio follows for
            half a second (push-to-talk released) is the cut made then. The client gets
            a ``finalize_too_frequent`` warning, once.
            Whisper decodes each cut piece alone and garbles the words at every cut:
            measured with tiny.en on JFK and six LibriSpeech clips, cuts every 0.5 s
            give WER 0.71, every 1 s 0.37, every 2 s 0.16, every 4 s 0.11, against 0.06
            without. 0 applies every ``finalize``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_sessions: int = Field(default=16, ge=1)
    backend_streams: int | None = Field(default=None, ge=1)
    queue_size: int = Field(default=0, ge=0)
    queue_timeout_seconds: float = Field(default=30.0, gt=0)
    max_session_seconds: float = Field(default=3600.0, gt=0)
    idle_timeout_seconds: float = Field(default=30.0, gt=0)
    max_frame_bytes: int = Field(default=256 * 1024, ge=1024)
    max_realtime_factor: float = Field(default=2.5, ge=1.0)
    burst_seconds: float = Field(default=5.0, ge=0.0)
    max_outbound_bytes: int = Field(default=1024 * 1024, ge=1024)
    final_timeout_seconds: float = Field(default=10.0, gt=0)
    min_finalize_audio_seconds: float = Field(default=4.0, ge=0)

    def info(self) -> LimitsInfo:
        """The limits as announced to a client in ``session.begin``."""
        return LimitsInfo(
            max_frame_bytes=self.max_frame_bytes,
            max_session_seconds=self.max_session_seconds,
            idle_timeout_seconds=self.idle_timeout_seconds,
            max_realtime_factor=self.max_realtime_factor,
            burst_seconds=self.burst_seconds,
        )


class IngestRate:
    """A token bucket measured in seconds of audio.

    The bucket holds up to ``burst_seconds`` (plus one second so that a single large frame
    at the start fits) and refills at ``max_realtime_factor`` seconds of audio per second
    of wall time. Audio that does not fit is refused.

    Args:
        limits: Where the rate and burst come from.
        now: The clock reading at the session start.
    """

    def __init__(self, limits: Limits, now: float) -> None:
        self._rate = limits.max_realtime_factor
        self._capacity = limits.burst_seconds + 1.0
        self._tokens = self._capacity
        self._updated = now

    def _refill(self, now: float) -> None:
        elapsed = max(0.0, now - self._updated)
        self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
        self._updated = now

    def admit(self, audio_seconds: float, now: float) -> bool:
        """Take ``audio_seconds`` from the bucket; ``False`` (nothing taken) if they do not fit."""
        self._refill(now)
        if audio_seconds > self._tokens:
            return False
        self._tokens -= audio_seconds
        return True

    @property
    def fill(self) -> float:
        """The fraction of the bucket left, from 0 (about to refuse) to 1."""
        return self._tokens / self._capacity
