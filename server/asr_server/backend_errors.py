"""Which contract error a backend failure is reported with, and what the client is told.

The exception's own text (gRPC details naming internal addresses) is for the server's log;
the client gets the code of :func:`error_code_for` and the fixed :data:`BACKEND_MESSAGES`.
"""

from __future__ import annotations

from asr.contract import ErrorCode
from asr.errors import (
    ASRError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    TransientError,
)

__all__ = ["BACKEND_MESSAGES", "error_code_for"]


def error_code_for(exc: BaseException) -> ErrorCode:
    """The error code a backend failure is reported with."""
    if isinstance(exc, ResourceExhaustedError):
        # Riva is full, not down: the same refusal as a full gateway, retryable.
        return ErrorCode.TOO_MANY_SESSIONS
    if isinstance(exc, TransientError):
        return ErrorCode.BACKEND_UNAVAILABLE
    if isinstance(exc, InvalidArgumentError | NotFoundError):
        # Riva refuses what the client asked for (language, model, boosting): the client's
        # parameters are what to fix, not the server.
        return ErrorCode.INVALID_CONFIG
    if isinstance(exc, ASRError):
        return ErrorCode.BACKEND_ERROR
    return ErrorCode.INTERNAL_ERROR


BACKEND_MESSAGES = {
    ErrorCode.TOO_MANY_SESSIONS: "the speech backend is at capacity; try again later",
    ErrorCode.BACKEND_UNAVAILABLE: "the speech backend is unavailable; try again",
    ErrorCode.INVALID_CONFIG: (
        "the speech backend did not accept the recognition settings (language, model, "
        "boosted words)"
    ),
    ErrorCode.BACKEND_ERROR: "the speech backend refused the request",
    ErrorCode.INTERNAL_ERROR: "internal error in the WebSocket server",
}
"""What a client is told per code of :func:`error_code_for`: never the backend's text."""
