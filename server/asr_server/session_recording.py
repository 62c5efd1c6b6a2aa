"""Whether a streaming session is recorded, and where its recording is in its life
(issue 15): the part both sans-I/O sessions share.

:class:`~asr_server.protocol.Session` (the own contract) and
:class:`~asr_server.realtime.RealtimeSession` (NIM's realtime API) each hold one
:class:`SessionRecording`. It decides the client's ``record``/``enhance_on_end`` against the
operator's :class:`~asr_server.recordings.policy.RecordingPolicy`, gives the
:class:`~asr_server.actions.StartRecording` that goes before the first audio and the
:class:`~asr_server.actions.EndRecording` that closes it, and keeps the ids the I/O layer
reports back. How the ids reach the client is each API's own business. Plain data, no
clock needed.
"""

from __future__ import annotations

from .actions import EndRecording, StartRecording
from .recordings.policy import RecordingDecision, RecordingPolicy, decide_recording

__all__ = ["SessionRecording"]


class SessionRecording:
    """One session's recording.

    Args:
        policy: The operator's recording policy (``ASR_SERVER_RECORDING``).
    """

    def __init__(self, policy: RecordingPolicy) -> None:
        self.policy = policy
        self.decision = RecordingDecision(record=False)
        """Whether the session is recorded, decided from its options before any audio."""
        self.started = False
        """:class:`StartRecording` was given: the recording must be ended."""
        self.ids: tuple[str | None, str | None] | None = None
        """``(recording_id, enhancement_job_id)`` once the recording ended."""

    def decide(self, *, record: bool | None, enhance_on_end: bool | None) -> str | None:
        """Decide from the session's options (again on every change before the audio).

        Returns:
            Why the options cannot be served (the session must be refused), or ``None``.
        """
        self.decision = decide_recording(self.policy, record=record, enhance_on_end=enhance_on_end)
        return self.decision.refusal

    def start(self) -> list[StartRecording]:
        """At the session's first audio: the :class:`StartRecording`, if it is recorded."""
        if not self.decision.record or self.started:
            return []
        self.started = True
        return [StartRecording(self.decision.enhance_on_end)]

    def end(self) -> list[EndRecording]:
        """At the session's end: the :class:`EndRecording` to wait for, if one is owed (a
        recording started and not yet reported ended)."""
        return [EndRecording()] if self.started and self.ids is None else []

    def ended(self, recording_id: str | None, enhancement_job_id: str | None) -> None:
        """The I/O layer closed the recording (``recording_id`` ``None``: not kept)."""
        self.ids = (recording_id, enhancement_job_id)

    @property
    def recording_id(self) -> str | None:
        """The recording's id once it ended; ``None`` before, or when it was not kept."""
        return self.ids[0] if self.ids else None

    @property
    def enhancement_job_id(self) -> str | None:
        """The enhancement job queued at its end, if any."""
        return self.ids[1] if self.ids else None
