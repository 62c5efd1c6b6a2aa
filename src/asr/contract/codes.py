"""The stable codes of the WebSocket contract: warnings, errors and close codes.

Shared by the gateway (which sends them) and by clients in this package
(:mod:`asr.evaluation.websocket`), so that both read one table: :data:`ERRORS` gives each
error code its close code and whether a new session may succeed.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

__all__ = [
    "CloseCode",
    "ERRORS",
    "ErrorCode",
    "ErrorSpec",
    "WarningCode",
]


class WarningCode(StrEnum):
    """Stable codes of ``warning`` messages; the session continues."""

    AUDIO_TOO_FAST = "audio_too_fast"
    """Audio arrives faster than real time and the burst allowance is half spent."""
    CONFIG_IGNORED = "config_ignored"
    """A ``config`` message came after audio; the configuration did not change."""
    FINALIZE_TOO_FREQUENT = "finalize_too_frequent"
    """A ``finalize`` came less than ``min_finalize_audio_seconds`` (4 s) of audio after
    the previous forced endpoint (or the session start): cutting speech that often garbles
    it. While audio goes on it is not applied (the audio flows into the utterance in
    progress, nothing is dropped); if no audio follows for 0.5 s, the cut is made then.
    Sent once."""
    IGNORED_AFTER_END = "ignored_after_end"
    """A message came after ``end`` (or after ``server_shutting_down``); it was ignored."""
    RECORDING_FAILED = "recording_failed"
    """The session's audio could not be kept (the server's disk or database failed);
    transcription goes on. Sent once; ``session.end`` carries a ``recording_id`` only if
    the audio up to the failure was kept."""
    SERVER_SHUTTING_DOWN = "server_shutting_down"
    """The server is shutting down: later audio is ignored, the finals of the audio so far
    follow, then ``session.end`` and close 1001 (going away)."""


class CloseCode(IntEnum):
    """WebSocket close codes (RFC 6455 section 7.4.2 reserves 4000-4999 for applications)."""

    NORMAL = 1000
    """``end`` was drained: every final was delivered."""
    UNAUTHORIZED = 4001
    """Missing or wrong API key, or a browser token that is malformed, tampered with or
    expired."""
    INVALID_CONFIG = 4002
    """Bad parameters in the query string or ``config`` message."""
    INVALID_MESSAGE = 4003
    """A frame the contract does not allow: bad JSON, unknown type, undecodable audio."""
    TOO_LARGE = 4004
    """A frame larger than ``max_frame_bytes``."""
    TOO_FAST = 4005
    """Audio sent much faster than real time, beyond the burst allowance."""
    TOO_MANY_SESSIONS = 4006
    """The server, or the Riva backend behind it, already runs all the sessions it can."""
    BACKEND_UNAVAILABLE = 4007
    """Riva could not be reached or failed transiently; try again later."""
    BACKEND_ERROR = 4008
    """Riva refused the request for a reason retrying will not fix."""
    IDLE_TIMEOUT = 4009
    """No message from the client for ``idle_timeout_seconds``."""
    SESSION_TOO_LONG = 4010
    """The session reached ``max_session_seconds``."""
    INTERNAL_ERROR = 4011
    """A bug or unexpected failure in this server."""
    CLIENT_TOO_SLOW = 4012
    """The client did not read the server's messages; more than ``max_outbound_bytes``
    waited to be sent."""


class ErrorCode(StrEnum):
    """Stable codes of ``error`` messages; each closes the session with one close code."""

    UNAUTHORIZED = "unauthorized"
    INVALID_CONFIG = "invalid_config"
    INVALID_JSON = "invalid_json"
    UNKNOWN_MESSAGE_TYPE = "unknown_message_type"
    INVALID_MESSAGE = "invalid_message"
    CONFIG_REQUIRED = "config_required"
    INVALID_AUDIO = "invalid_audio"
    FRAME_TOO_LARGE = "frame_too_large"
    TOO_FAST = "too_fast"
    TOO_MANY_SESSIONS = "too_many_sessions"
    BACKEND_UNAVAILABLE = "backend_unavailable"
    BACKEND_ERROR = "backend_error"
    IDLE_TIMEOUT = "idle_timeout"
    SESSION_TOO_LONG = "session_too_long"
    INTERNAL_ERROR = "internal_error"
    CLIENT_TOO_SLOW = "client_too_slow"
    RECORDING_UNAVAILABLE = "recording_unavailable"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """What an error code means for the client."""

    close_code: CloseCode
    retryable: bool
    meaning: str


ERRORS: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.UNAUTHORIZED: ErrorSpec(
        CloseCode.UNAUTHORIZED,
        False,
        "API key missing or not accepted, or the `token` is malformed, tampered with or "
        "expired (get a new one)",
    ),
    ErrorCode.INVALID_CONFIG: ErrorSpec(
        CloseCode.INVALID_CONFIG,
        False,
        "a query parameter or `config` field is unknown or out of range, e.g. an encoding "
        "other than `pcm16`/`float32`",
    ),
    ErrorCode.INVALID_JSON: ErrorSpec(
        CloseCode.INVALID_MESSAGE, False, "a text frame is not a JSON object"
    ),
    ErrorCode.UNKNOWN_MESSAGE_TYPE: ErrorSpec(
        CloseCode.INVALID_MESSAGE, False, "a text frame's `type` is missing or not one listed"
    ),
    ErrorCode.INVALID_MESSAGE: ErrorSpec(
        CloseCode.INVALID_MESSAGE, False, "a known message with fields it does not allow"
    ),
    ErrorCode.CONFIG_REQUIRED: ErrorSpec(
        CloseCode.INVALID_MESSAGE,
        False,
        "audio arrived before a `config` message on a server that requires one",
    ),
    ErrorCode.INVALID_AUDIO: ErrorSpec(
        CloseCode.INVALID_MESSAGE,
        False,
        "a binary frame does not decode in the configured encoding: an odd byte count for "
        "`pcm16`, not a multiple of 4 bytes or NaN/infinite samples for `float32`",
    ),
    ErrorCode.FRAME_TOO_LARGE: ErrorSpec(
        CloseCode.TOO_LARGE, False, "a frame is larger than `max_frame_bytes`"
    ),
    ErrorCode.TOO_FAST: ErrorSpec(
        CloseCode.TOO_FAST,
        False,
        "audio arrived faster than `max_realtime_factor` times real time beyond "
        "`burst_seconds`; pace audio as it is recorded",
    ),
    ErrorCode.TOO_MANY_SESSIONS: ErrorSpec(
        CloseCode.TOO_MANY_SESSIONS,
        True,
        "the server is at its session limit, or Riva at its stream limit (refused before "
        "`session.begin` once known; see `backend_streams`)",
    ),
    ErrorCode.BACKEND_UNAVAILABLE: ErrorSpec(
        CloseCode.BACKEND_UNAVAILABLE,
        True,
        "Riva is unreachable, overloaded, dropped the stream, or showed no progress (no "
        "response at all) for `final_timeout_seconds` while it owed one after "
        "`finalize`/`end` (stalled)",
    ),
    ErrorCode.BACKEND_ERROR: ErrorSpec(
        CloseCode.BACKEND_ERROR,
        False,
        "Riva refused the request (e.g. an unknown model or language)",
    ),
    ErrorCode.IDLE_TIMEOUT: ErrorSpec(
        CloseCode.IDLE_TIMEOUT, True, "no message for `idle_timeout_seconds`"
    ),
    ErrorCode.SESSION_TOO_LONG: ErrorSpec(
        CloseCode.SESSION_TOO_LONG, True, "the session reached `max_session_seconds`"
    ),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(
        CloseCode.INTERNAL_ERROR, True, "an unexpected failure in the WebSocket server"
    ),
    ErrorCode.CLIENT_TOO_SLOW: ErrorSpec(
        CloseCode.CLIENT_TOO_SLOW,
        True,
        "the client stopped reading: more than `max_outbound_bytes` of messages were "
        "waiting to be sent",
    ),
    ErrorCode.RECORDING_UNAVAILABLE: ErrorSpec(
        CloseCode.INVALID_CONFIG,
        False,
        "`record` or `enhance_on_end` was asked of a server whose recording policy is off "
        "(`ASR_SERVER_RECORDING=off`)",
    ),
}
"""Close code, retryability and meaning of every error code."""
