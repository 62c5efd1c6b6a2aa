"""A streaming session's recording (issue 15): the audio sent to Riva and the finals sent
to the client, teed into a :class:`~asr_server.recordings.SessionRecorder`.

Every streaming interface (the own contract over a WebSocket or WebRTC, NVIDIA's realtime
API) records through one :class:`RecordingTee`, held by its
:class:`~asr_server.streaming_connection.StreamingConnection`: what is kept does not
depend on how the session came in.
"""

from __future__ import annotations

from asr.events import Final
from asr.logs import ContextAdapter

from .recordings import Recordings, SessionRecorder

__all__ = ["RecordingTee", "SAMPLE_RATE"]

SAMPLE_RATE = 16_000
"""What is recorded is what Riva is sent: ``ForwardAudio`` is 16 kHz mono PCM16."""


class RecordingTee:
    """The recording of one session, when it has one.

    :meth:`start`, :meth:`write` and :meth:`add_final` raise what the store raised; the
    connection then calls :meth:`abandon` and tells the client, and the live transcript
    goes on unrecorded. :meth:`end` closes the recording whatever happened before, so
    what it kept stays.

    Args:
        recordings: The gateway's recordings, ``None`` when they are off.
        log: The session's logger.
    """

    def __init__(self, recordings: Recordings | None, log: ContextAdapter) -> None:
        self._recordings = recordings
        self._log = log
        self._recorder: SessionRecorder | None = None
        self._abandoned: SessionRecorder | None = None

    @property
    def active(self) -> bool:
        """Whether audio and finals are being kept."""
        return self._recorder is not None

    async def start(
        self, *, session_id: str, owner: str, interface: str, enhance_on_end: bool
    ) -> None:
        """Begin keeping the session (``StartRecording``), owned by ``owner`` (a key_id)."""
        if self._recordings is None:
            raise RuntimeError("the session asked to be recorded but recordings are off")
        self._recorder = await self._recordings.start_session(
            session_id=session_id,
            key_id=owner,
            interface=interface,
            sample_rate=SAMPLE_RATE,
            enhance_on_end=enhance_on_end,
        )
        self._log.info(
            "recording as %s", self._recorder.record.recording_id, extra={"owner": owner}
        )

    async def write(self, pcm16: bytes) -> None:
        """Append audio as it is forwarded to Riva."""
        assert self._recorder is not None
        await self._recorder.write(pcm16)

    async def add_final(self, final: Final) -> None:
        """Store a final before it is sent (times on the session's clock)."""
        assert self._recorder is not None
        await self._recorder.add_final(final)

    def abandon(self) -> None:
        """Stop keeping anything after a failure; :meth:`end` still closes it."""
        if self._recorder is not None:
            self._abandoned, self._recorder = self._recorder, None

    async def end(self) -> tuple[str | None, str | None]:
        """Close the recording (audio fsync'd, enhancement queued if asked); idempotent.

        Returns:
            ``(recording_id, enhancement_job_id)``, ``(None, None)`` without a recording,
            when closing it failed (logged) or when it was deleted while recording.
        """
        recorder = self._recorder or self._abandoned
        self._recorder = self._abandoned = None
        if recorder is None:
            return None, None
        try:
            ended = await recorder.end()
        except Exception:
            self._log.exception("closing the recording failed")
            return None, None
        if ended is None:
            return None, None  # deleted while it was recording
        return ended.recording_id, ended.enhancement_job_id
