"""What the recordings layer hands out: frozen views of sessions and jobs, and their states.

These are plain data, detached from the database; :mod:`.store` and :mod:`.queue` make
them from rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from asr.events import Final

__all__ = ["JobRecord", "JobState", "SessionPage", "SessionRecord", "SessionState"]


class SessionState(StrEnum):
    """Where a recorded session is."""

    RECORDING = "recording"
    """Audio is being written."""
    COMPLETED = "completed"
    """The session ended and its audio was closed and fsync'd."""
    INTERRUPTED = "interrupted"
    """The gateway died mid-session; the audio up to then was repaired at a later start."""


class JobState(StrEnum):
    """Where an enhancement job is (see :mod:`.jobs` for the transitions)."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """One recorded session.

    Attributes:
        id: The session's id (the gateway's).
        key_id: Fingerprint of the API key that created it: its owner.
        interface: Which interface served it (e.g. ``"ws"``, ``"realtime"``).
        created_at: When recording started (UTC).
        ended_at: When it ended (UTC); ``None`` while recording.
        state: See :class:`SessionState`.
        recording_id: Id of the audio recording.
        audio_path: The WAV file (absolute).
        sample_rate: Sample rate of the audio in Hz.
        audio_format: ``"wav/pcm_s16le"``: mono PCM16 in a RIFF WAV.
        duration_seconds: Audio kept, in seconds (updated at the end).
        finals: The real-time finals, in order, with their word times.
        enhancement_job_id: The enhancement job, if one was queued.
    """

    id: str
    key_id: str
    interface: str
    created_at: datetime
    ended_at: datetime | None
    state: SessionState
    recording_id: str
    audio_path: str
    sample_rate: int
    audio_format: str
    duration_seconds: float
    finals: tuple[Final, ...]
    enhancement_job_id: str | None


@dataclass(frozen=True, slots=True)
class SessionPage:
    """One page of a listing, newest first.

    Attributes:
        sessions: The sessions, without their finals (``finals`` is empty: fetch one
            session for them).
        next_cursor: Pass as ``cursor`` for the next page; ``None`` on the last page.
    """

    sessions: tuple[SessionRecord, ...]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """One job.

    Attributes:
        id: The job's id.
        kind: What it does (``"enhance"``).
        session_id: The session it works on.
        key_id: Owner, as the session's.
        state: See :class:`JobState`.
        attempts: Claims so far (a lease that expired counts as one).
        error: The last failure's message.
        result: The result, once completed: for ``enhance``, ``{"finals": [...],
            "duration_seconds": ..., "processing_seconds": ...}``.
        created_at: When it was queued (UTC).
        updated_at: Last change (UTC).
    """

    id: str
    kind: str
    session_id: str
    key_id: str
    state: JobState
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    @property
    def finals(self) -> tuple[Final, ...]:
        """The enhanced finals of a completed ``enhance`` job (else empty)."""
        if not self.result:
            return ()
        return tuple(Final.model_validate(item) for item in self.result.get("finals", ()))
