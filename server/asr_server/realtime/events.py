"""Every event of NVIDIA's realtime transcription API, as frozen models, and the parser
of client text frames.

Client to server (JSON text frames, each may carry an ``event_id`` of the client's):
:class:`TranscriptionSessionUpdate`, :class:`InputAudioBufferAppend`,
:class:`InputAudioBufferCommit`, :class:`InputAudioBufferClear`,
:class:`InputAudioBufferDone`. Server to client: every :data:`AnyServerEvent` carries a
``type`` and an ``event_id`` (``event_<session>_<n>``, n from 0, one more per event).

The shapes are those NVIDIA's own client reads (``riva.client.realtime``, 2.27): the
first event is ``conversation.created``; the answer to an update is
``transcription_session.updated`` with ``session``; a ``...delta`` carries the utterance's
whole interim transcript in ``delta`` (Riva's partials are whole hypotheses that may
revise earlier words, and the client prints each one as the transcript so far: unlike
OpenAI's deltas they replace, they do not append); a ``...completed`` carries
``transcript``, ``words_info.words`` and ``is_last_result``, the last one's ``true`` ending
the client's exchange; an ``error`` carries ``error.message``.

One server event is the gateway's own: :class:`TranscriptionSessionRecorded`
(``transcription_session.recorded``), sent only by a recorded session (issue 15), after the
last ``...completed`` and before the close, with the ``recording_id`` and
``enhancement_job_id`` the own contract puts in ``session.end``. NIM's API has no event
for it; clients of this API ignore event types they do not know (NVIDIA's client reads
nothing after ``is_last_result``, OpenAI's SDK parses unknown types leniently), and its
type has no ``error`` in it, which NVIDIA's client would take for a failure.

:func:`parse_client_event` never raises: a frame that is not a valid event comes back as
the :class:`ErrorEvent` to send.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationError,
)

from ..stream_options import loads
from .config import SessionPatch, TranscriptionSession
from .errors import ErrorDetail, ErrorType, RealtimeErrorCode

__all__ = [
    "AnyClientEvent",
    "AnyServerEvent",
    "Conversation",
    "ConversationCreated",
    "ErrorEvent",
    "InputAudioBufferAppend",
    "InputAudioBufferClear",
    "InputAudioBufferCleared",
    "InputAudioBufferCommit",
    "InputAudioBufferCommitted",
    "InputAudioBufferDone",
    "RuntimeConfig",
    "TranscriptionCompleted",
    "TranscriptionDelta",
    "TranscriptionSessionRecorded",
    "TranscriptionSessionUpdate",
    "TranscriptionSessionUpdated",
    "WordInfo",
    "WordsInfo",
    "client_event_adapter",
    "invalid_request",
    "parse_client_event",
    "server_event_adapter",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


# --- client events ---------------------------------------------------------------------


class _ClientEvent(_Frozen):
    event_id: str | None = Field(default=None, max_length=200)


class TranscriptionSessionUpdate(_ClientEvent):
    """Change the session before its first audio; answered ``...updated``."""

    type: Literal["transcription_session.update"]
    session: SessionPatch


def _b64decode(value: object) -> object:
    if not isinstance(value, str):
        return value  # bytes given in Python, or a type error for pydantic to report
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"not valid base64 ({exc})") from None


Base64Audio = Annotated[
    bytes,
    BeforeValidator(_b64decode),
    PlainSerializer(lambda b: base64.b64encode(b).decode("ascii"), return_type=str),
]
"""Audio bytes, base64 (RFC 4648, standard alphabet, padded) on the wire."""


class RuntimeConfig(_Frozen):
    """Per-chunk options (Riva ``runtime_config``); NVIDIA's client sends
    ``{"force_eou": "true"}`` to end the utterance after the chunk."""

    force_eou: bool = False


class InputAudioBufferAppend(_ClientEvent):
    """Add audio to the buffer; it goes to Riva at the next commit.

    Attributes:
        audio: The audio, base64.
        runtime_config: ``force_eou`` ends the utterance after this chunk's audio.
    """

    type: Literal["input_audio_buffer.append"]
    audio: Base64Audio
    runtime_config: RuntimeConfig | None = None


class InputAudioBufferCommit(_ClientEvent):
    """Send the buffered audio to recognition; answered ``...committed``. NVIDIA's
    client commits after every chunk: a commit does not end the utterance."""

    type: Literal["input_audio_buffer.commit"]


class InputAudioBufferClear(_ClientEvent):
    """Drop the buffered audio not yet committed; answered ``...cleared``."""

    type: Literal["input_audio_buffer.clear"]


class InputAudioBufferDone(_ClientEvent):
    """No more audio: the buffered audio is committed, the last ``...completed`` has
    ``is_last_result`` true, then the server closes (1000)."""

    type: Literal["input_audio_buffer.done"]


AnyClientEvent = (
    TranscriptionSessionUpdate
    | InputAudioBufferAppend
    | InputAudioBufferCommit
    | InputAudioBufferClear
    | InputAudioBufferDone
)
"""Any client event (a plain union, for annotations)."""

client_event_adapter: TypeAdapter[AnyClientEvent] = TypeAdapter(
    Annotated[AnyClientEvent, Field(discriminator="type")]
)
"""Validates a client event, discriminated by ``type``."""

_CLIENT_TYPES = (
    "input_audio_buffer.append",
    "input_audio_buffer.clear",
    "input_audio_buffer.commit",
    "input_audio_buffer.done",
    "transcription_session.update",
)


# --- server events ---------------------------------------------------------------------


class _ServerEvent(_Frozen):
    event_id: str


class Conversation(_Frozen):
    id: str
    object: Literal["realtime.conversation"] = "realtime.conversation"


class ConversationCreated(_ServerEvent):
    """First event of every session (NVIDIA's client reads it before its update)."""

    type: Literal["conversation.created"] = "conversation.created"
    conversation: Conversation


class TranscriptionSessionUpdated(_ServerEvent):
    """Answer to an update: the session now in effect."""

    type: Literal["transcription_session.updated"] = "transcription_session.updated"
    session: TranscriptionSession


class InputAudioBufferCommitted(_ServerEvent):
    """Answer to a commit. An item is one utterance: ``item_id`` names the utterance in
    progress, which the committed audio goes into; ``previous_item_id`` the one before."""

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    previous_item_id: str | None
    item_id: str


class InputAudioBufferCleared(_ServerEvent):
    """Answer to a clear."""

    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class TranscriptionDelta(_ServerEvent):
    """The interim transcript of the utterance ``item_id`` (whole, replacing the last)."""

    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class WordInfo(_Frozen):
    """A word of a completed utterance, times in milliseconds from the session start."""

    word: str
    start_time: int
    end_time: int
    confidence: float = 0.0
    speaker_tag: int = 0


class WordsInfo(_Frozen):
    words: tuple[WordInfo, ...] = ()


class TranscriptionCompleted(_ServerEvent):
    """The final transcript of the utterance ``item_id``; never revised.

    Attributes:
        transcript: Riva's final for the utterance.
        is_last_result: The last one after ``input_audio_buffer.done``.
        words_info: Word times when ``enable_word_time_offsets`` is on.
    """

    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    is_last_result: bool = False
    words_info: WordsInfo = WordsInfo()


class TranscriptionSessionRecorded(_ServerEvent):
    """The gateway's own event: the session's recording is closed (see the module).

    Attributes:
        recording_id: The recording (``GET /v1/sessions/{session_id}``); ``None`` when its
            audio could not be kept (the server's log says why).
        enhancement_job_id: The enhancement job queued at the end (``enhance_on_end``).
    """

    type: Literal["transcription_session.recorded"] = "transcription_session.recorded"
    recording_id: str | None
    enhancement_job_id: str | None = None


class ErrorEvent(_ServerEvent):
    """A refused client event (the session goes on) or a failure that ends the session
    (the close frame follows)."""

    type: Literal["error"] = "error"
    error: ErrorDetail


AnyServerEvent = (
    ConversationCreated
    | TranscriptionSessionUpdated
    | InputAudioBufferCommitted
    | InputAudioBufferCleared
    | TranscriptionDelta
    | TranscriptionCompleted
    | TranscriptionSessionRecorded
    | ErrorEvent
)
"""Any server event (a plain union, for annotations)."""

server_event_adapter: TypeAdapter[AnyServerEvent] = TypeAdapter(
    Annotated[AnyServerEvent, Field(discriminator="type")]
)
"""Validates a server event (for clients and tests)."""


# --- parsing ---------------------------------------------------------------------------


def _summary(exc: ValidationError, kind: str) -> tuple[str, str | None]:
    """The first errors as ``field: problem``, and the first one's field."""
    parts: list[str] = []
    params: list[str] = []
    for err in exc.errors()[:3]:
        loc = err["loc"][1:] if err["loc"][:1] == (kind,) else err["loc"]
        where = ".".join(str(p) for p in loc)
        params.append(where)
        text = err["msg"].removeprefix("Value error, ")
        parts.append(f"{where}: {text}" if where else text)
    return "; ".join(parts), (params[0] or None) if params else None


def invalid_request(
    event_id: str,
    code: RealtimeErrorCode,
    message: str,
    *,
    param: str | None = None,
    client_event_id: str | None = None,
) -> ErrorEvent:
    """An ``invalid_request_error`` event."""
    detail = ErrorDetail(
        type=ErrorType.INVALID_REQUEST,
        code=code,
        message=message,
        param=param,
        event_id=client_event_id,
    )
    return ErrorEvent(event_id=event_id, error=detail)


def parse_client_event(
    text: str, *, new_event_id: Callable[[], str]
) -> AnyClientEvent | ErrorEvent:
    """The client event in a text frame, or the ``error`` event that refuses it.

    Args:
        text: The frame.
        new_event_id: Gives the ``event_id`` of the error event (called only for one).
    """
    try:
        data = loads(text)
    except ValueError as exc:
        return invalid_request(
            new_event_id(), RealtimeErrorCode.INVALID_JSON, f"text frame is not JSON: {exc}"
        )
    if not isinstance(data, dict):
        return invalid_request(
            new_event_id(), RealtimeErrorCode.INVALID_JSON, "text frame is not a JSON object"
        )
    raw_id = data.get("event_id")
    client_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 200 else None
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in _CLIENT_TYPES:
        shown = kind if isinstance(kind, str) and len(kind) <= 100 else None
        what = "has no 'type'" if kind is None else f"has an unknown type {shown!r}"
        return invalid_request(
            new_event_id(),
            RealtimeErrorCode.UNKNOWN_EVENT_TYPE,
            f"event {what}; expected one of {', '.join(_CLIENT_TYPES)}",
            param="type",
            client_event_id=client_id,
        )
    try:
        return client_event_adapter.validate_python(data)
    except ValidationError as exc:
        message, param = _summary(exc, kind)
        return invalid_request(
            new_event_id(),
            RealtimeErrorCode.INVALID_EVENT,
            f"invalid {kind!r}: {message}",
            param=param,
            client_event_id=client_id,
        )
