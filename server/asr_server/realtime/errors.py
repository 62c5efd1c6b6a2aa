"""The ``error`` object of NVIDIA's realtime API and the gateway's stable codes.

The shape is OpenAI's (``type``, ``code``, ``message``, ``param``, ``event_id``), which is
what NVIDIA's client reads (``error.message``); ``retryable`` is the gateway's addition,
as in the own contract's errors. Client errors leave the session open (the event they
answer is dropped); the codes shared with :class:`asr.contract.ErrorCode` end it with
that code's close code from :data:`asr.contract.ERRORS`.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from asr.contract import ERRORS, ErrorCode

__all__ = ["BACKEND_MESSAGES", "ErrorDetail", "ErrorType", "RealtimeErrorCode", "fatal_error"]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


class ErrorType(StrEnum):
    """OpenAI's error classes: the client's fault, or the server's."""

    INVALID_REQUEST = "invalid_request_error"
    SERVER = "server_error"


class RealtimeErrorCode(StrEnum):
    """Stable ``error.code`` values. The client errors leave the session open (the event
    is dropped); the values shared with :class:`asr.contract.ErrorCode` end it."""

    INVALID_JSON = "invalid_json"
    """A text frame is not a JSON object."""
    UNKNOWN_EVENT_TYPE = "unknown_event_type"
    """``type`` missing, or not a client event of this API."""
    INVALID_EVENT = "invalid_event"
    """A known event with a field missing, unknown or out of range (bad base64 too)."""
    UNSUPPORTED_FRAME = "unsupported_frame"
    """A binary frame: audio goes base64 in ``input_audio_buffer.append``."""
    FRAME_TOO_LARGE = "frame_too_large"
    """A text frame larger than the gateway's ``max_frame_bytes``."""
    INVALID_AUDIO = "invalid_audio"
    """Appended audio that does not decode: an odd byte count for ``pcm16``, a WAV
    header that is not PCM16 mono for ``none``."""
    BUFFER_FULL = "buffer_full"
    """The uncommitted audio would exceed the session's buffer: commit more often."""
    UPDATE_AFTER_AUDIO = "update_after_audio"
    """``transcription_session.update`` after the first audio: the session is fixed."""
    UPDATE_REQUIRED = "update_required"
    """Audio before ``transcription_session.update`` on a gateway that requires one."""
    AFTER_DONE = "after_done"
    """An event after ``input_audio_buffer.done`` (or a shutdown): ignored."""
    UNAUTHORIZED = "unauthorized"
    INVALID_CONFIG = "invalid_config"
    """Riva refused the session's settings (language, model, boosting)."""
    TOO_MANY_SESSIONS = "too_many_sessions"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_ERROR = "backend_error"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_TOO_LONG = "session_too_long"
    CLIENT_TOO_SLOW = "client_too_slow"
    RECORDING_UNAVAILABLE = "recording_unavailable"
    """``?record=true`` or ``?enhance_on_end=true`` on a gateway whose recording is off."""
    INTERNAL_ERROR = "internal_error"


class ErrorDetail(_Frozen):
    """The ``error`` object of an :class:`ErrorEvent`.

    Attributes:
        type: Whose fault.
        code: Stable code.
        message: What is wrong, for people; may change between versions.
        param: The offending field (``session.input_audio_format``), when one is.
        event_id: The ``event_id`` of the client event refused, when it had one.
        retryable: Whether a new session later may succeed (the gateway's addition).
    """

    type: ErrorType
    code: RealtimeErrorCode
    message: str
    param: str | None = None
    event_id: str | None = None
    retryable: bool = False


_SERVER_FAULTS = frozenset(
    {
        RealtimeErrorCode.TOO_MANY_SESSIONS,
        RealtimeErrorCode.BACKEND_UNAVAILABLE,
        RealtimeErrorCode.BACKEND_ERROR,
        RealtimeErrorCode.INTERNAL_ERROR,
    }
)

BACKEND_MESSAGES = {
    ErrorCode.TOO_MANY_SESSIONS: "the speech backend is at capacity; try again later",
    ErrorCode.BACKEND_UNAVAILABLE: "the speech backend is unavailable; try again",
    ErrorCode.INVALID_CONFIG: (
        "the speech backend did not accept the session's settings (language, model, "
        "word boosting, custom_configuration)"
    ),
    ErrorCode.BACKEND_ERROR: "the speech backend refused the request",
    ErrorCode.INTERNAL_ERROR: "internal error in the gateway",
}
"""What a client is told of a backend failure: never the backend's text (gRPC details
name internal addresses; they are for the server log)."""


def fatal_error(code: RealtimeErrorCode, message: str) -> tuple[ErrorDetail, int]:
    """The ``error`` that ends a session, and its close code.

    Args:
        code: One shared with :class:`asr.contract.ErrorCode`, whose entry in
            :data:`asr.contract.ERRORS` gives the close code and ``retryable``.
    """
    spec = ERRORS[ErrorCode(code.value)]
    kind = ErrorType.SERVER if code in _SERVER_FAULTS else ErrorType.INVALID_REQUEST
    detail = ErrorDetail(type=kind, code=code, message=message, retryable=spec.retryable)
    return detail, int(spec.close_code)
