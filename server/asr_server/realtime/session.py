"""NVIDIA's realtime transcription API without I/O: client frames and Riva events in,
actions out.

A :class:`RealtimeSession` holds everything about one ``/v1/realtime?intent=transcription``
connection, as :class:`asr_server.protocol.Session` does for the own contract, and is
driven the same way: the route feeds it client frames, the
:class:`~asr_server.relay.RivaRelay`'s events and the clock, and carries out the actions.
Those are :mod:`asr_server.protocol`'s (:class:`StartBackend`, :class:`ForwardAudio`,
:class:`FinishUtterance`, :class:`EndAudio`, :class:`Close`) except :class:`Send`, which
carries a realtime event (``action.event.model_dump_json()`` is the frame).

The exchange, in the order NVIDIA's client (``riva.client.realtime``, 2.27) runs it::

    server  conversation.created                      (open)
    client  transcription_session.update              -> transcription_session.updated
    client  input_audio_buffer.append {audio[, runtime_config.force_eou]}   (buffered)
    client  input_audio_buffer.commit                 -> input_audio_buffer.committed
            ... append + commit per chunk ...
    server  conversation.item.input_audio_transcription.delta       (Riva partials)
    server  conversation.item.input_audio_transcription.completed   (Riva finals)
    client  input_audio_buffer.done                   (commits the rest, ends the audio)
    server  ...completed {is_last_result: true}, then close 1000

A commit does not end the utterance (NVIDIA's client commits every 100 ms chunk); Riva's
endpointing does, or ``force_eou``. Refused client events are answered with an ``error``
and dropped, the session goes on (OpenAI's rule); backend failures and the session's
limits end it with an ``error`` and a close code from :data:`asr.contract.ERRORS`.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ValidationError

from asr.contract import ErrorCode
from asr.errors import AudioFormatError
from asr.events import Final, Partial, Progress

from ..actions import Close, CommonAction, EndAudio, ForwardAudio, StartBackend, State
from ..limits import Limits
from ..recordings.policy import RecordingPolicy
from ..relay import BYTES_PER_SECOND
from ..session_core import SessionCore
from .audio import BufferFullError, InputAudio
from .config import SessionSettings, TranscriptionSession
from .errors import RealtimeErrorCode, backend_error, fatal_error
from .events import (
    AnyClientEvent,
    AnyServerEvent,
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
from .transcript import Transcript

__all__ = ["Action", "RealtimeSession", "Send"]


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``event`` to the client as a JSON text frame (``event.model_dump_json()``)."""

    event: AnyServerEvent


Action = Send | CommonAction


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
        self._max_backlog = max_backlog_seconds
        self._updated = False
        self._seq = 0
        self._input = self._new_input()
        self._backend_started = False
        self._utterance_has_audio = False
        self._forwarded = 0
        """16 kHz PCM16 bytes sent to Riva."""
        self._processed = 0.0
        """Seconds of session audio Riva reported processed."""
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
        held = self.backlogged
        self._processed = max(self._processed, reached)
        if held and not self.backlogged:
            # The client was held while Riva caught up: its silence was ours, not idling.
            self._clock.activity(now)
        self._stall.response(reached, now, owed=self._owed)
        if isinstance(event, Progress):
            return []
        if isinstance(event, Partial):
            return [Send(e) for e in self._transcript.partial(event)]
        hold = self.state is State.DRAINING
        return [Send(e) for e in self._transcript.final(event, offset, hold=hold)]

    def backend_failed(self, exc: BaseException, now: float) -> list[Action]:
        """The Riva relay failed: an ``error`` with the code for it, then the close."""
        del now
        return self.refuse(*backend_error(exc))

    def backend_stream_ended(self, *, forced: bool, now: float) -> list[Action]:
        """One gRPC call of the relay finished (a :class:`~asr_server.relay.StreamEnded`)."""
        del forced
        if self.state is not State.CLOSED:
            self._stall.progress(now, owed=self._owed)
        return []

    def backend_done(self, now: float) -> list[Action]:
        """The relay delivered its last result after :class:`EndAudio`."""
        del now
        if self.state is State.CLOSED:
            return []
        if self.state is not State.DRAINING:
            return self.refuse(RealtimeErrorCode.INTERNAL_ERROR, "backend stream ended early")
        return self._end_session()

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

    @property
    def backlog_seconds(self) -> float:
        """Audio sent to Riva that it has not reported processed. The route stops reading
        the socket while this is high (NVIDIA's client sends a file as fast as it reads
        it): back-pressure instead of refusing fast audio."""
        return max(0.0, self._forwarded / BYTES_PER_SECOND - self._processed)

    @property
    def backlogged(self) -> bool:
        """Whether :attr:`backlog_seconds` is over ``max_backlog_seconds``: the route
        stops reading client frames until it is not. Meanwhile the client is not idle
        (no ``idle_timeout``) and Riva owes progress: none for ``final_timeout_seconds``
        ends the session as stalled (``backend_unavailable``), as after ``done``."""
        return self.backlog_seconds > self._max_backlog

    @property
    def forwarded_seconds(self) -> float:
        """Seconds of audio sent to Riva (cleared audio excluded)."""
        return self._forwarded / BYTES_PER_SECOND

    @property
    def processed_seconds(self) -> float:
        """Seconds of audio Riva reported processed (its latest ``audio_processed``)."""
        return self._processed

    @property
    def transcript(self) -> str:
        """The completed transcripts so far, joined by spaces."""
        return " ".join(self._transcript.finals)

    def describe(self) -> TranscriptionSession:
        """The session now in effect, as ``transcription_session.updated`` sends it."""
        values = self.settings.model_dump(include=set(SessionSettings.model_fields))
        values["input_audio_transcription"]["prompt"] = ""  # not applied: see the model
        return TranscriptionSession(id=self.session_id, **values)

    # -- handlers -----------------------------------------------------------------------

    def _on_update(self, event: TranscriptionSessionUpdate) -> list[Action]:
        if self._backend_started:
            return self._reject(
                RealtimeErrorCode.UPDATE_AFTER_AUDIO,
                "transcription_session.update after the first audio was not applied; "
                "send it before input_audio_buffer.append",
                event=event,
            )
        try:
            self.settings = event.session.apply(self.settings)
        except ValidationError as exc:
            problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
            return self._reject(
                RealtimeErrorCode.INVALID_EVENT,
                f"invalid 'transcription_session.update': {problem}",
                event=event,
                param="session",
            )
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
        actions: list[Action] = []
        for part in self._input.take(final=final):
            if isinstance(part, ForwardAudio):
                self._forwarded += len(part.pcm16)
                self._utterance_has_audio = True
                actions.append(part)
            elif self._utterance_has_audio and not final:
                # A forced end with audio since the last: Riva finalises it (force_eou).
                self._utterance_has_audio = False
                self._stall.owe_cut(self._forwarded / BYTES_PER_SECOND, now)
                actions.append(part)
        if self.backlogged:
            self._stall.owe(now)  # Riva owes progress while the client is held
        return actions

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

    def _fail(self, code: ErrorCode, message: str) -> list[Action]:
        return self.refuse(RealtimeErrorCode(code.value), message)

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

    @property
    def _owed(self) -> bool:
        """Riva owes an answer whatever it reached: after ``done``, or while the client
        is held."""
        return self.state is State.DRAINING or self.backlogged

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
