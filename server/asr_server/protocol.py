"""The WebSocket session protocol without I/O: frames and backend events in, actions out.

A :class:`Session` holds everything about one connection. The asyncio layer
(:mod:`asr_server.ws_contract`) feeds it what arrives (client frames, Riva events, the
clock) and carries out the actions it returns: send a message, start the Riva stream,
forward audio, end the utterance or the audio, close. Nothing here touches a socket or
reads a clock, so every rule of the contract is tested with plain calls
(``tests/test_ws_protocol.py``). What it shares with NIM's realtime session (deadlines,
recording, close) is :class:`~asr_server.session_core.SessionCore`; the audio's pace,
decoding and cuts are :class:`~asr_server.contract_audio.ContractAudio`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from asr.contract import (
    ERRORS,
    ConfigMessage,
    EndMessage,
    ErrorCode,
    ErrorMessage,
    FinalizeMessage,
    KeepaliveMessage,
    SessionBegin,
    SessionEnd,
    SessionQueued,
    SessionUpdated,
    StreamConfig,
    WarningCode,
    WarningMessage,
)
from asr.events import Final, Partial, Progress

from . import actions
from .actions import *  # noqa: F403  (re-exported: the connections import them from here)
from .actions import Action, Close, EndAudio, ForwardAudio, Send, StartBackend, State
from .backend_errors import error_code_for
from .client_frames import FrameRefusal, read_text_frame, validate_message
from .contract_audio import ContractAudio
from .limits import Limits
from .recordings.policy import RecordingPolicy
from .session_core import SessionCore
from .stream_options import QUERY_AUTH_KEYS, config_from_query, loads, validation_summary
from .utterances import Utterances

__all__ = [
    "QUERY_AUTH_KEYS",
    "Session",
    "config_from_query",
    "error_code_for",
    "loads",
]
__all__ += actions.__all__  # the actions are re-exported: connections import them here
__all__.sort()


class Session(SessionCore[Send]):
    """One WebSocket connection's protocol state.

    Args:
        session_id: Identifier echoed in every message.
        limits: The server's limits.
        now: Clock reading (seconds, monotonic) at connection.
        query: The request's query string, parsed with ``urllib.parse.parse_qs``.
        require_config: Refuse audio until a ``config`` message arrived.
        recording: The operator's recording policy (``ASR_SERVER_RECORDING``), against
            which the ``record`` and ``enhance_on_end`` options are decided.
    """

    def __init__(
        self,
        *,
        session_id: str,
        limits: Limits,
        now: float,
        query: Mapping[str, Sequence[str]] | None = None,
        require_config: bool = False,
        recording: RecordingPolicy = RecordingPolicy.OFF,
    ) -> None:
        super().__init__(session_id=session_id, limits=limits, now=now, recording=recording)
        self.config = StreamConfig()
        self._query = query or {}
        self._require_config = require_config
        self._configured = False
        self._seq = 0
        self._audio = ContractAudio(limits, self._stall, now, self.config)
        self._backend_started = False
        self._warned: set[WarningCode] = set()
        # Transcript assembly, in seconds of session audio.
        self._utterances = Utterances(self._envelope)

    # -- inputs -----------------------------------------------------------------------

    def queued(self, position: int, timeout: float) -> list[Action]:
        """The connection waits in the admission queue at ``position`` for at most
        ``timeout`` more seconds: ``session.queued``."""
        if self.state is State.CLOSED:
            return []
        return [Send(SessionQueued(**self._envelope(), position=position, timeout=timeout))]

    def open(self, now: float | None = None) -> list[Action]:
        """The connection is accepted: ``session.begin``, or an error for a bad query.

        Args:
            now: When it was admitted, if later than the clock reading it was created
                with (it waited in the queue): the session's clocks start then.
        """
        if now is not None:
            self._clock.restart(now)
            self._audio.restart(now)
        try:
            self.config = config_from_query(self._query)
        except ValueError as exc:
            message = validation_summary(exc) if isinstance(exc, ValidationError) else str(exc)
            return self.refuse(ErrorCode.INVALID_CONFIG, f"bad query string: {message}")
        self._configured = any(k not in QUERY_AUTH_KEYS for k in self._query)
        self._audio.configure(self.config)
        if refused := self._decide_recording():
            return refused
        return [
            Send(SessionBegin(**self._envelope(), config=self.config, limits=self.limits.info()))
        ]

    def refuse(self, code: ErrorCode, message: str) -> list[Action]:
        """End the session with an error (also used before :meth:`open`, e.g. bad auth)."""
        if self.state is State.CLOSED:
            return []
        spec = ERRORS[code]
        self.state = State.CLOSED
        error = ErrorMessage(
            **self._envelope(), code=code, message=message, retryable=spec.retryable
        )
        return [Send(error), Close(spec.close_code, code.value)]

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A text frame from the client."""
        if self.state is State.CLOSED:
            return []
        self._clock.activity(now)
        read = read_text_frame(text, self.limits.max_frame_bytes)
        if isinstance(read, FrameRefusal):
            return self.refuse(read.code, read.message)
        kind, data = read
        if self.state is State.DRAINING:
            return self._warn_once(
                WarningCode.IGNORED_AFTER_END, f"{kind!r} after 'end' was ignored"
            )
        message = validate_message(kind, data)
        if isinstance(message, FrameRefusal):
            return self.refuse(message.code, message.message)
        if isinstance(message, ConfigMessage):
            return self._on_config(message)
        if isinstance(message, FinalizeMessage):
            return self._finish_utterance(now)
        if isinstance(message, EndMessage):
            return self._on_end(now)
        assert isinstance(message, KeepaliveMessage)
        return []

    def receive_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary frame (audio) from the client."""
        if self.state is State.CLOSED:
            return []
        self._clock.activity(now)
        if len(data) > self.limits.max_frame_bytes:
            return self.refuse(
                ErrorCode.FRAME_TOO_LARGE,
                f"binary frame of {len(data)} bytes is larger than "
                f"{self.limits.max_frame_bytes} bytes",
            )
        if self.state is State.DRAINING:
            return self._warn_once(
                WarningCode.IGNORED_AFTER_END, "audio after 'end' (or a shutdown) was ignored"
            )
        if self._require_config and not self._configured:
            return self.refuse(
                ErrorCode.CONFIG_REQUIRED, "send a 'config' message before the first audio frame"
            )
        pcm = self._audio.take(data, now)
        if isinstance(pcm, FrameRefusal):
            return self.refuse(pcm.code, pcm.message)
        actions: list[Action] = []
        if self._audio.too_fast:
            actions += self._warn_once(
                WarningCode.AUDIO_TOO_FAST,
                "audio arrives faster than real time; pace it as it is recorded or the "
                "session will be closed",
            )
        if not self._backend_started:
            self._backend_started = True
            actions += self._recording.start()
            actions.append(StartBackend(self.config.recognition_options()))
        if pcm:
            actions.append(ForwardAudio(pcm))
        return actions

    def backend_event(
        self, event: Partial | Final | Progress, *, offset: float, forced: bool, now: float
    ) -> list[Action]:
        """A response from Riva: a result, or a :class:`~asr.events.Progress` without one.

        Args:
            event: The result, with times relative to its own gRPC stream.
            offset: Seconds of session audio sent before that stream began.
            forced: A final that ends an utterance cut by ``finalize``, or any result
                after ``end``.
            now: Clock reading.
        """
        if self.state is State.CLOSED:
            return []
        # Responses do not count as client activity, but any of them is progress of the
        # backend; one that has processed audio up to the last forced cut answers it.
        self._stall.response(offset + event.audio_processed, now, owed=self._owed)
        if isinstance(event, Progress):
            return []
        if isinstance(event, Partial):
            return self._utterances.partial(event, offset)
        return self._utterances.final(event, offset, forced)

    def shutdown(self, now: float, timeout: float) -> list[Action]:
        """The server is shutting down: drain what was sent, then close with 1001.

        Audio already received is finalised and its finals delivered; later audio is
        ignored. Sessions still open ``timeout`` seconds later are closed by :meth:`tick`.
        """
        if self.state is State.CLOSED:
            return []
        self._clock.shutdown(now, timeout)
        actions = self._warn_once(
            WarningCode.SERVER_SHUTTING_DOWN,
            "the server is shutting down: audio from now on is ignored; the finals of the "
            "audio so far follow, then session.end",
        )
        if self.state is State.OPEN:
            self._going_away = True
            actions += self._on_end(now)
        return actions

    def recording_failed(self, now: float) -> list[Action]:
        """Keeping the audio failed (disk, database); transcription goes on. The server's
        log has the cause, the client a ``recording_failed`` warning."""
        del now
        if self.state is State.CLOSED:
            return []
        return self._warn_once(
            WarningCode.RECORDING_FAILED,
            "the session's audio could not be kept; transcription goes on",
        )

    @property
    def audio_seconds(self) -> float:
        """Seconds of client audio accepted."""
        return self._audio.audio_seconds

    @property
    def transcript(self) -> str:
        """The finals so far, joined by spaces."""
        return " ".join(self._utterances.texts)

    # -- handlers ---------------------------------------------------------------------

    def _on_config(self, message: ConfigMessage) -> list[Action]:
        if self._backend_started or self.audio_seconds:
            return self._warn_once(
                WarningCode.CONFIG_IGNORED,
                "'config' after audio was ignored; send it before the first audio frame",
            )
        fields = message.model_fields_set - {"type"}
        self.config = self.config.model_copy(update={k: getattr(message, k) for k in fields})
        self._configured = True
        self._audio.configure(self.config)
        if refused := self._decide_recording():
            return refused
        return [Send(SessionUpdated(**self._envelope(), config=self.config))]

    def _finish_utterance(self, now: float) -> list[Action]:
        cut = self._audio.finalize(now)
        if cut is not None:
            return list(cut)
        minimum = self.limits.min_finalize_audio_seconds
        return self._warn_once(
            WarningCode.FINALIZE_TOO_FREQUENT,
            f"'finalize' less than {minimum:g} s of audio after the previous forced "
            "endpoint (or the session start) is not applied while audio goes on: the "
            "utterance continues until its next endpoint",
        )

    def _on_end(self, now: float) -> list[Action]:
        self.state = State.DRAINING
        if not self._backend_started:
            return self._end_session()
        self._stall.owe(now)
        return [*self._audio.end(), EndAudio()]

    def _decide_recording(self) -> list[Action]:
        refusal = self._recording.decide(
            record=self.config.record, enhance_on_end=self.config.enhance_on_end
        )
        return [] if refusal is None else self.refuse(ErrorCode.RECORDING_UNAVAILABLE, refusal)

    # -- SessionCore ------------------------------------------------------------------

    def _fail(self, code: ErrorCode, message: str) -> list[Action]:
        return self.refuse(code, message)

    def _timer(self) -> float | None:
        # A deferred finalize is applied once the audio pauses (ContractAudio.due).
        return self._audio.due() if self.state is State.OPEN else None

    def _on_timer(self, now: float) -> list[Action]:
        due = self._timer()
        return list(self._audio.cut(now)) if due is not None and now >= due else []

    def _end_session(self) -> list[Action]:
        if end_recording := self._end_recording():
            return list(end_recording)  # session.end carries the recording's ids
        end = SessionEnd(
            **self._envelope(),
            transcript=self.transcript,
            audio_seconds=round(self.audio_seconds, 3),
            finals=len(self._utterances.texts),
            recording_id=self._recording.recording_id,
            enhancement_job_id=self._recording.enhancement_job_id,
        )
        return [Send(end), *self._close()]

    # -- helpers ----------------------------------------------------------------------

    def _envelope(self) -> dict[str, Any]:
        seq = self._seq
        self._seq += 1
        return {"session_id": self.session_id, "seq": seq}

    def _warn_once(self, code: WarningCode, message: str) -> list[Action]:
        if code in self._warned:
            return []
        self._warned.add(code)
        return [Send(WarningMessage(**self._envelope(), code=code, message=message))]
