"""NVIDIA's realtime transcription API without I/O: client frames and Riva events in,
actions out.

A :class:`RealtimeSession` holds everything about one ``/v1/realtime?intent=transcription``
connection, as :class:`asr_server.protocol.Session` does for the own contract, and is
driven the same way: the route feeds it client frames, the
:class:`~asr_server.relay.RivaRelay`'s events and the clock, and carries out the actions
(the exchange is drawn in :mod:`asr_server.realtime`). Those are
:data:`asr_server.actions.CommonAction` and :class:`~asr_server.realtime.actions.Send`,
which carries a realtime event. What it shares with the own contract's session (the
deadlines, the recording, the close) is :class:`~asr_server.session_core.SessionCore`;
the audio's way from the buffer to Riva is :mod:`.audio` and :mod:`.forwarded`.

A commit does not end the utterance (NVIDIA's client commits every 100 ms chunk); Riva's
endpointing does, or ``force_eou``. Refused client events are answered with an ``error``
and dropped, the session goes on (OpenAI's rule); backend failures and the session's
limits end it with an ``error`` and a close code from :data:`asr.contract.ERRORS`.
"""

from __future__ import annotations

from asr.contract import ErrorCode
from asr.errors import AudioFormatError
from asr.events import Final, Partial, Progress

from ..actions import Close, EndAudio, StartBackend, State
from ..limits import Limits
from ..recordings.policy import RecordingPolicy
from ..session_core import SessionCore
from .actions import Action, Send
from .audio import BufferFullError, InputAudio
from .config import SessionSettings, TranscriptionSession
from .errors import BACKEND_MESSAGES, RealtimeErrorCode, fatal_error
from .events import (
    AnyClientEvent,
    Conversation,
    ConversationCreated,
    ErrorEvent,
    InputAudioBufferAppend,
    InputAudioBufferClear,
    InputAudioBufferCleared,
    InputAudioBufferCommit,
    InputAudioBufferCommitted,
    InputAudioBufferDone,
    TranscriptionSessionRecorded,
    TranscriptionSessionUpdate,
    TranscriptionSessionUpdated,
    invalid_request,
    parse_client_event,
)
from .forwarded import ForwardedAudio
from .transcript import Transcript

__all__ = ["Action", "RealtimeSession", "Send"]


class RealtimeSession(SessionCore[Send]):
    """One realtime connection's protocol state.

    Args:
        session_id: ``sess_<hex>``; the event and item ids are derived from it.
        limits: The gateway's limits (``max_frame_bytes`` per text frame, the idle,
            session and stall timeouts).
        now: Clock reading (seconds, monotonic) at connection.
        settings: The session's starting settings (the gateway's defaults when ``None``).
        require_update: Refuse audio before a ``transcription_session.update`` (NVIDIA's
            client always sends one; the NIM does not require it).
        max_buffer_seconds: Uncommitted audio held at most; an append beyond it is
            refused with ``buffer_full``.
        max_backlog_seconds: Audio sent to Riva and not yet reported processed beyond
            which :attr:`backlogged` asks the route to stop reading the client.
        recording: The operator's recording policy (``ASR_SERVER_RECORDING``), against
            which ``record`` and ``enhance_on_end`` are decided; ``always`` records
            NVIDIA's client, which asks for neither.
        record: The client asked to keep the session's audio (``?record=true``); ``None``
            when it did not say.
        enhance_on_end: The client asked for an enhancement job at the end
            (``?enhance_on_end=true``, implies ``record``).
    """

    def __init__(
        self,
        *,
        session_id: str,
        limits: Limits,
        now: float,
        settings: SessionSettings | None = None,
        require_update: bool = False,
        max_buffer_seconds: float = 60.0,
        max_backlog_seconds: float = 10.0,
        recording: RecordingPolicy = RecordingPolicy.OFF,
        record: bool | None = None,
        enhance_on_end: bool | None = None,
    ) -> None:
        super().__init__(session_id=session_id, limits=limits, now=now, recording=recording)
        self.settings = settings or SessionSettings()
        self.audio_seconds = 0.0
        """Seconds of audio appended and accepted (cleared audio included)."""
        self._tag = session_id.removeprefix("sess_")
        self._require_update = require_update
        self._max_buffer = max_buffer_seconds
        self._updated = False
        self._seq = 0
        self._input = self._new_input()
        self._backend_started = False
        self._sent = ForwardedAudio(self._stall, max_backlog_seconds)
        self._transcript = Transcript(self._tag, self._next_id)
        self._refusal = self._recording.decide(record=record, enhance_on_end=enhance_on_end)

    # -- inputs -------------------------------------------------------------------------

    def open(self) -> list[Action]:
        """The connection is accepted (subprotocol ``realtime``): ``conversation.created``,
        or an ``error`` (``recording_unavailable``) and the close for recording options
        the operator's policy refuses."""
        if self._refusal is not None:
            return self.refuse(RealtimeErrorCode.RECORDING_UNAVAILABLE, self._refusal)
        conversation = Conversation(id=f"conv_{self._tag}")
        return [Send(ConversationCreated(event_id=self._next_id(), conversation=conversation))]

    def refuse(self, code: RealtimeErrorCode, message: str) -> list[Action]:
        """End the session with an error (also before :meth:`open`, e.g. bad auth).

        ``code`` must be one shared with :class:`asr.contract.ErrorCode` (the close code
        and ``retryable`` come from :data:`asr.contract.ERRORS`).
        """
        if self.state is State.CLOSED:
            return []
        detail, close_code = fatal_error(code, message)
        self.state = State.CLOSED
        return [
            Send(ErrorEvent(event_id=self._next_id(), error=detail)),
            Close(close_code, code.value),
        ]

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A text frame from the client."""
        if self.state is State.CLOSED:
            return []
        self._clock.activity(now)
        limit = self.limits.max_frame_bytes
        if len(text) > limit or len(text.encode()) > limit:
            return self._reject(
                RealtimeErrorCode.FRAME_TOO_LARGE,
                f"text frame is larger than {limit} bytes; append less audio per event",
            )
        event = parse_client_event(text, new_event_id=self._next_id)
        if isinstance(event, ErrorEvent):
            return [Send(event)]
        if self.state is State.DRAINING:
            return self._reject(
                RealtimeErrorCode.AFTER_DONE,
                f"{event.type!r} after input_audio_buffer.done was ignored",
                event=event,
            )
        if isinstance(event, TranscriptionSessionUpdate):
            return self._on_update(event)
        if isinstance(event, InputAudioBufferAppend):
            return self._on_append(event)
        if isinstance(event, InputAudioBufferCommit):
            return [*self._commit(now), Send(self._committed())]
        if isinstance(event, InputAudioBufferClear):
            self._input.clear()
            return [Send(InputAudioBufferCleared(event_id=self._next_id()))]
        assert isinstance(event, InputAudioBufferDone)
        return self._on_done(now)

    def receive_binary(self, data: bytes, now: float) -> list[Action]:
        """A binary frame: not part of this API; refused, the session goes on."""
        del data
        if self.state is State.CLOSED:
            return []
        self._clock.activity(now)
        return self._reject(
            RealtimeErrorCode.UNSUPPORTED_FRAME,
            "binary frames are not part of this API: send audio base64 in "
            "input_audio_buffer.append",
        )

    def backend_event(
        self, event: Partial | Final | Progress, *, offset: float, forced: bool, now: float
    ) -> list[Action]:
        """A response from Riva (a :class:`~asr_server.relay.RelayEvent`'s fields)."""
        del forced  # the realtime API does not tell endpoints from forced cuts
        if self.state is State.CLOSED:
            return []
        reached = offset + event.audio_processed
        if self._sent.reached(reached):
            self._clock.activity(now)  # the client was held: its silence was ours
        self._stall.response(reached, now, owed=self._owed)
        if isinstance(event, Progress):
            return []
        if isinstance(event, Partial):
            return [Send(e) for e in self._transcript.partial(event)]
        hold = self.state is State.DRAINING
        return [Send(e) for e in self._transcript.final(event, offset, hold=hold)]

    def recording_failed(self, now: float) -> list[Action]:
        """Keeping the audio failed (disk, database); transcription goes on. Nothing is
        sent now: NIM's API has no warning, and NVIDIA's client stops at any ``error``.
        The server's log has the cause; ``transcription_session.recorded`` tells the
        client at the end (``recording_id`` ``null`` if nothing was kept)."""
        del now
        return []

    def shutdown(self, now: float, timeout: float) -> list[Action]:
        """The server is shutting down: as ``input_audio_buffer.done``, then close 1001;
        a session still open ``timeout`` seconds later is closed by :meth:`tick`."""
        if self.state is State.CLOSED:
            return []
        self._clock.shutdown(now, timeout)
        self._going_away = True
        return self._on_done(now) if self.state is State.OPEN else []

    # The back-pressure (see .forwarded): the route stops reading while backlogged.

    @property
    def backlog_seconds(self) -> float:
        """:attr:`.ForwardedAudio.backlog_seconds`."""
        return self._sent.backlog_seconds

    @property
    def backlogged(self) -> bool:
        """:attr:`.ForwardedAudio.backlogged`."""
        return self._sent.backlogged

    @property
    def forwarded_seconds(self) -> float:
        """:attr:`.ForwardedAudio.forwarded_seconds`."""
        return self._sent.forwarded_seconds

    @property
    def processed_seconds(self) -> float:
        """:attr:`.ForwardedAudio.processed_seconds`."""
        return self._sent.processed_seconds

    @property
    def transcript(self) -> str:
        """The completed transcripts so far, joined by spaces."""
        return " ".join(self._transcript.finals)

    def describe(self) -> TranscriptionSession:
        """The session now in effect, as ``transcription_session.updated`` sends it."""
        return self.settings.describe(self.session_id)

    # -- handlers -----------------------------------------------------------------------

    def _on_update(self, event: TranscriptionSessionUpdate) -> list[Action]:
        if self._backend_started:
            return self._reject(
                RealtimeErrorCode.UPDATE_AFTER_AUDIO,
                "transcription_session.update after the first audio was not applied; "
                "send it before input_audio_buffer.append",
                event=event,
            )
        settings = event.session.apply(self.settings)
        if isinstance(settings, str):  # why the update cannot be applied
            return self._reject(
                RealtimeErrorCode.INVALID_EVENT,
                f"invalid 'transcription_session.update': {settings}",
                event=event,
                param="session",
            )
        self.settings = settings
        self._updated = True
        self._input = self._new_input()
        session = self.describe()
        return [Send(TranscriptionSessionUpdated(event_id=self._next_id(), session=session))]

    def _on_append(self, event: InputAudioBufferAppend) -> list[Action]:
        if self._require_update and not self._updated:
            return self._reject(
                RealtimeErrorCode.UPDATE_REQUIRED,
                "send transcription_session.update before the first input_audio_buffer.append",
                event=event,
            )
        force_eou = event.runtime_config is not None and event.runtime_config.force_eou
        try:
            self.audio_seconds += self._input.append(event.audio, force_eou=force_eou)
        except AudioFormatError as exc:
            code, fmt = RealtimeErrorCode.INVALID_AUDIO, self.settings.input_audio_format
            return self._reject(code, f"audio is not valid {fmt!r}: {exc}", event=event)
        except BufferFullError as exc:
            return self._reject(RealtimeErrorCode.BUFFER_FULL, str(exc), event=event)
        if self._backend_started:
            return []
        self._backend_started = True  # Riva's call opens now; the audio goes at commit
        return [*self._recording.start(), StartBackend(self.settings.recognition_options())]

    def _commit(self, now: float, *, final: bool = False) -> list[Action]:
        return [*self._sent.commit(self._input.take(final=final), now, final=final)]

    def _committed(self) -> InputAudioBufferCommitted:
        transcript = self._transcript
        return InputAudioBufferCommitted(
            event_id=self._next_id(),
            previous_item_id=transcript.previous_item_id,
            item_id=transcript.item_id(transcript.index),
        )

    def _on_done(self, now: float) -> list[Action]:
        self.state = State.DRAINING
        if not self._backend_started:
            return self._end_session()
        self._stall.progress(now, owed=True)  # the wait for the last results starts now
        return [*self._commit(now, final=True), EndAudio()]

    # -- SessionCore --------------------------------------------------------------------

    _backend_messages = BACKEND_MESSAGES

    def _fail(self, code: ErrorCode, message: str) -> list[Action]:
        return self.refuse(RealtimeErrorCode(code.value), message)

    @property
    def _owed(self) -> bool:
        """Riva owes an answer whatever it reached: after ``done``, or while the client
        is held."""
        return self.state is State.DRAINING or self.backlogged

    @property
    def _idle_counts(self) -> bool:
        """The idle timeout applies while the session is open and its client not held."""
        return self.state is State.OPEN and not self.backlogged

    def _end_session(self) -> list[Action]:
        if self._recording.ids is not None:  # the recording is closed: its ids, the close
            recorded = TranscriptionSessionRecorded(
                event_id=self._next_id(),
                recording_id=self._recording.recording_id,
                enhancement_job_id=self._recording.enhancement_job_id,
            )
            return [Send(recorded), *self._close()]
        last = Send(self._transcript.last())
        if end_recording := self._end_recording():
            # Every final is out before the recording closes (it keeps them all).
            return [last, *end_recording]
        return [last, *self._close()]

    # -- helpers ------------------------------------------------------------------------

    def _reject(
        self,
        code: RealtimeErrorCode,
        message: str,
        *,
        event: AnyClientEvent | None = None,
        param: str | None = None,
    ) -> list[Action]:
        """Refuse one client event; the session goes on."""
        client_id = event.event_id if event is not None else None
        error = invalid_request(
            self._next_id(), code, message, param=param, client_event_id=client_id
        )
        return [Send(error)]

    def _new_input(self) -> InputAudio:
        return InputAudio(
            self.settings.input_audio_format,
            self.settings.input_audio_params.sample_rate_hz,
            max_buffer_seconds=self._max_buffer,
        )

    def _next_id(self) -> str:
        seq = self._seq
        self._seq += 1
        return f"event_{self._tag}_{seq}"
