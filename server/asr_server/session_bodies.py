"""The JSON bodies of the sessions API (:mod:`asr_server.routes_sessions`) and how a
stored session, its finals and an enhancement job become them.

The models are the contract (FastAPI's OpenAPI schema is generated from them); the
conversions are pure functions over the store's records.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from asr.events import Final

from .recordings import JobRecord, JobState, SessionRecord

__all__ = [
    "AudioInfo",
    "FinalBody",
    "JOB_PATH",
    "JobBody",
    "SESSIONS_PATH",
    "SessionBody",
    "SessionList",
    "SessionSummary",
    "WordBody",
    "finals_body",
    "job_body",
    "summary",
]

SESSIONS_PATH = "/v1/sessions"
JOB_PATH = "/v1/audio/transcriptions/{job_id}"
"""An enhancement job (beside ``POST /v1/audio/transcriptions``, the upload route; the
WebSocket's ``/v1/audio/transcriptions/stream`` is mounted first and keeps its path)."""


class WordBody(BaseModel):
    """A word with its time in seconds from the session's start."""

    word: str
    start: float
    end: float
    confidence: float | None


class FinalBody(BaseModel):
    """One final (an utterance), times in seconds from the session's start.

    Without word times, an utterance starts where the previous one ended and ends where
    Riva had processed the audio when it settled it.
    """

    text: str
    start: float
    end: float
    confidence: float | None
    words: list[WordBody]


class AudioInfo(BaseModel):
    """The session's recording."""

    recording_id: str
    url: str
    """``GET`` it for the WAV (``?format=flac`` for FLAC)."""
    format: str
    """``wav/pcm_s16le``: mono PCM16 in a RIFF WAV."""
    sample_rate: int
    duration_seconds: float


class SessionSummary(BaseModel):
    """A recorded session as listed."""

    id: str
    state: Literal["recording", "completed", "interrupted"]
    """``interrupted``: the gateway stopped mid-session; the audio up to then is kept."""
    interface: str
    created_at: datetime
    ended_at: datetime | None
    audio: AudioInfo
    enhancement_job_id: str | None
    enhancement_url: str | None


class SessionBody(SessionSummary):
    """A recorded session with its real-time finals."""

    finals: list[FinalBody]


class SessionList(BaseModel):
    """A page of the caller's sessions, newest first."""

    sessions: list[SessionSummary]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; ``null`` on the last page."""


class JobBody(BaseModel):
    """An enhancement job and, once completed, its transcript."""

    id: str
    object: Literal["transcription.job"] = "transcription.job"
    status: Literal["queued", "running", "completed", "failed"]
    session_id: str
    created_at: datetime
    updated_at: datetime
    attempts: int
    error: str | None
    text: str | None
    """The transcript, once completed."""
    duration_seconds: float | None
    finals: list[FinalBody] | None
    """The utterances with their times, once completed."""


def finals_body(finals: Sequence[Final]) -> list[FinalBody]:
    bodies: list[FinalBody] = []
    previous_end = 0.0
    for final in finals:
        if not final.text.strip():
            continue
        if final.words:
            start, end = final.words[0].start_ms / 1000, final.words[-1].end_ms / 1000
        else:
            start, end = previous_end, max(previous_end, round(final.audio_processed, 3))
        words = [
            WordBody(
                word=w.word, start=w.start_ms / 1000, end=w.end_ms / 1000, confidence=w.confidence
            )
            for w in final.words
        ]
        bodies.append(
            FinalBody(
                text=final.text, start=start, end=end, confidence=final.confidence, words=words
            )
        )
        previous_end = end
    return bodies


def summary(record: SessionRecord) -> dict[str, object]:
    job = record.enhancement_job_id
    return {
        "id": record.id,
        "state": record.state.value,
        "interface": record.interface,
        "created_at": record.created_at,
        "ended_at": record.ended_at,
        "audio": AudioInfo(
            recording_id=record.recording_id,
            url=f"{SESSIONS_PATH}/{record.id}/audio",
            format=record.audio_format,
            sample_rate=record.sample_rate,
            duration_seconds=round(record.duration_seconds, 3),
        ),
        "enhancement_job_id": job,
        "enhancement_url": JOB_PATH.format(job_id=job) if job is not None else None,
    }


def job_body(job: JobRecord) -> JobBody:
    done = job.state is JobState.COMPLETED and job.result is not None
    duration = job.result.get("duration_seconds") if done and job.result else None
    return JobBody(
        id=job.id,
        status=job.state.value,
        session_id=job.session_id,
        created_at=job.created_at,
        updated_at=job.updated_at,
        attempts=job.attempts,
        error=job.error,
        text=" ".join(f.text.strip() for f in job.finals if f.text.strip()) if done else None,
        duration_seconds=float(duration) if duration is not None else None,
        finals=finals_body(job.finals) if done else None,
    )
