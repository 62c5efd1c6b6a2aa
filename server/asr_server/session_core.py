"""What the two sans-I/O streaming sessions share: their state, deadlines, recording and
close.

:class:`~asr_server.protocol.Session` (the own contract) and
:class:`~asr_server.realtime.RealtimeSession` (NIM's realtime API) differ in their messages
and in how they refuse; they end a session the same way. :class:`SessionCore` holds that:
the :class:`~asr_server.session_clock.SessionClock` behind :meth:`~SessionCore.tick`,
:meth:`~SessionCore.deadline` and :meth:`~SessionCore.backend_deadline`, the
:class:`~asr_server.session_recording.SessionRecording` and its ``recording_ended``, and
the close (1000, or 1001 after a shutdown), and how the backend's end and failures are
met. A subclass says how an error is sent (:meth:`~SessionCore._fail`) and how the session
ends (:meth:`~SessionCore._end_session`).
Plain data, the clock passed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Generic, TypeVar

from asr.contract import CloseCode, ErrorCode

from .actions import GOING_AWAY, Close, CommonAction, EndRecording, State
from .backend_errors import BACKEND_MESSAGES, error_code_for
from .limits import Limits
from .recordings.policy import RecordingDecision, RecordingPolicy
from .session_clock import Expiry, SessionClock
from .session_recording import SessionRecording

__all__ = ["SessionCore"]

SendT = TypeVar("SendT")
"""The interface's own ``Send`` action."""


class SessionCore(Generic[SendT]):
    """One streaming session's life, whatever its API.

    Args:
        session_id: The session's identifier.
        limits: The server's limits.
        now: Clock reading (seconds, monotonic) at connection.
        recording: The operator's recording policy (``ASR_SERVER_RECORDING``).
    """

    def __init__(
        self, *, session_id: str, limits: Limits, now: float, recording: RecordingPolicy
    ) -> None:
        self.session_id = session_id
        self.limits = limits
        self.state = State.OPEN
        self._clock = SessionClock(limits, now)
        self._stall = self._clock.stall
        self._recording = SessionRecording(recording)
        self._going_away = False
        """Close with 1001 rather than 1000."""

    _backend_messages: ClassVar[Mapping[ErrorCode, str]] = BACKEND_MESSAGES
    """What a client is told per code of :func:`~asr_server.backend_errors.error_code_for`."""

    # -- for subclasses -----------------------------------------------------------------

    def _fail(self, code: ErrorCode, message: str) -> list[SendT | CommonAction]:
        """End the session with the API's error event for ``code``, then the close."""
        raise NotImplementedError

    def _end_session(self) -> list[SendT | CommonAction]:
        """The session's last events and its close (or the :class:`EndRecording` to wait
        for first, from :meth:`_end_recording`)."""
        raise NotImplementedError

    @property
    def _owed(self) -> bool:
        """Whether the backend owes an answer whatever audio it reached: after the end of
        the audio."""
        return self.state is State.DRAINING

    @property
    def _idle_counts(self) -> bool:
        """Whether the idle timeout applies now: the session is open."""
        return self.state is State.OPEN

    def _timer(self) -> float | None:
        """A deadline of the subclass's own, at which :meth:`_on_timer` runs."""
        return None

    def _on_timer(self, now: float) -> list[SendT | CommonAction]:
        """Called by :meth:`tick` when no shared deadline has passed."""
        del now
        return []

    # -- inputs -------------------------------------------------------------------------

    def backend_failed(self, exc: BaseException, now: float) -> list[SendT | CommonAction]:
        """The Riva relay failed: the error for its code, with a generic message.

        The exception's text (gRPC details such as ``ipv4:10.0.0.5:50051: Connection
        refused``) names internal addresses and is for the server log, which the caller
        writes with the session id; the client learns what happened from the code.
        """
        del now
        code = error_code_for(exc)
        return self._fail(code, self._backend_messages[code])

    def backend_stream_ended(self, *, forced: bool, now: float) -> list[SendT | CommonAction]:
        """One gRPC call of the relay finished (its results were all delivered).

        Args:
            forced: The call's audio had been ended by :class:`EndAudio`.
            now: Clock reading.
        """
        del forced
        if self.state is not State.CLOSED:
            self._stall.progress(now, owed=self._owed)
        return []

    def backend_done(self, now: float) -> list[SendT | CommonAction]:
        """The Riva relay delivered its last result after :class:`EndAudio`."""
        del now
        if self.state is State.CLOSED:
            return []
        if self.state is not State.DRAINING:
            return self._fail(ErrorCode.INTERNAL_ERROR, "backend stream ended unexpectedly")
        return self._end_session()

    def recording_ended(
        self, *, recording_id: str | None, enhancement_job_id: str | None, now: float
    ) -> list[SendT | CommonAction]:
        """The recording asked for by :class:`EndRecording` is closed: the session ends,
        telling the client its ids.

        Args:
            recording_id: The recording's id; ``None`` if it could not be kept.
            enhancement_job_id: The queued enhancement job, if any.
            now: Clock reading.
        """
        del now
        if self.state is State.CLOSED:
            return []
        self._recording.ended(recording_id, enhancement_job_id)
        return self._end_session()

    def tick(self, now: float) -> list[SendT | CommonAction]:
        """Check the session's deadlines; call at the earlier of :meth:`deadline` and
        :meth:`backend_deadline` (or any time)."""
        if self.state is State.CLOSED:
            return []
        expired = self._clock.expired(now, idle_counts=self._idle_counts)
        if expired is Expiry.SHUTDOWN:
            self.state = State.CLOSED
            return [Close(GOING_AWAY, "server shutting down")]
        if expired is not None:
            return self._fail(*self._clock.error(expired))
        return self._on_timer(now)

    def deadline(self) -> float | None:
        """When :meth:`tick` must next be called for the session's own limits, or
        ``None`` once closed."""
        if self.state is State.CLOSED:
            return None
        deadline = self._clock.deadline(idle_counts=self._idle_counts)
        timer = self._timer()
        return deadline if timer is None else min(deadline, timer)

    def backend_deadline(self) -> float | None:
        """When the backend's overdue answer makes :meth:`tick` fail the session (stalled,
        see :mod:`asr_server.stall`) with ``backend_unavailable``; ``None`` when none is
        owed."""
        return None if self.state is State.CLOSED else self._clock.backend_deadline()

    @property
    def recording(self) -> RecordingDecision:
        """Whether the session is recorded, decided from its options before any audio."""
        return self._recording.decision

    # -- helpers ------------------------------------------------------------------------

    def _end_recording(self) -> list[EndRecording]:
        """The :class:`EndRecording` to wait for before the end, if a recording is owed:
        its ids go into the session's last event. The backend owes nothing meanwhile."""
        end = self._recording.end()
        if end:
            self._stall.clear()
        return end

    def _close(self) -> list[Close]:
        """Closed: 1000, or 1001 once the server is shutting down."""
        self.state = State.CLOSED
        if self._going_away:
            return [Close(GOING_AWAY, "server shutting down")]
        return [Close(CloseCode.NORMAL, "session ended")]
