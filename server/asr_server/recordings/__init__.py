"""Recorded sessions: their audio, real-time finals, enhancement jobs and retention.

One stage per module: :mod:`.policy` (the operator's policy against the request),
:mod:`.wav` and :mod:`.audio_file` (PCM16 WAV written as it arrives, repaired after a
crash), :mod:`.tables` / :mod:`.database` / :mod:`.migrations` (SQLAlchemy 2 async,
Alembic), :mod:`.store` (sessions), :mod:`.jobs` (the job state machine, sans-I/O),
:mod:`.queue` (claims with a lease), :mod:`.worker` (bounded workers),
:mod:`.enhancement` (offline ``Recognize`` of the whole recording), :mod:`.retention`
(what expired, and the sweeper), and :mod:`.service`, the facade the routes call.
"""

from __future__ import annotations

from .jobs import JobPolicy, LeaseLost
from .policy import RecordingDecision, RecordingPolicy, decide_recording
from .records import JobRecord, JobState, SessionPage, SessionRecord, SessionState
from .service import ENHANCE, Recordings, SessionRecorder, utc_now
from .settings import RecordingSettings
from .store import AUDIO_FORMAT, InvalidCursor

__all__ = [
    "AUDIO_FORMAT",
    "ENHANCE",
    "InvalidCursor",
    "JobPolicy",
    "JobRecord",
    "JobState",
    "LeaseLost",
    "RecordingDecision",
    "RecordingPolicy",
    "RecordingSettings",
    "Recordings",
    "SessionPage",
    "SessionRecord",
    "SessionRecorder",
    "SessionState",
    "decide_recording",
    "utc_now",
]
