"""The exceptions raised by :mod:`asr`, all under one root.

::

    ASRError                        every error this package raises
    ├── TransientError              may succeed if tried again later (retryable = True)
    │   ├── UnavailableError        UNAVAILABLE: server down, connection refused or reset
    │   ├── DeadlineExceededError   DEADLINE_EXCEEDED: the call ran past its deadline
    │   ├── ResourceExhaustedError  RESOURCE_EXHAUSTED: server at capacity, message too large
    │   ├── StreamInterruptedError  a stream broke after results arrived; not replayed
    │   └── CircuitOpenError        the endpoint's circuit breaker is open; failed fast
    └── PermanentError              will fail the same way again (retryable = False)
        ├── InvalidArgumentError    INVALID_ARGUMENT / OUT_OF_RANGE / FAILED_PRECONDITION
        │   └── AudioFormatError    audio this package or the server cannot decode
        ├── AuthenticationError     UNAUTHENTICATED: missing or bad API key
        ├── PermissionDeniedError   PERMISSION_DENIED
        ├── NotFoundError           NOT_FOUND: e.g. an unknown model name
        ├── UnimplementedError      UNIMPLEMENTED: the server lacks the RPC
        ├── ServerError             INTERNAL / UNKNOWN / DATA_LOSS / CANCELLED by the server
        └── ConfigurationError      bad local settings (certificate paths, metadata, URI)

gRPC status codes are translated in exactly one place, :func:`from_grpc_error`.
"""

from __future__ import annotations

from typing import ClassVar

import grpc

__all__ = [
    "ASRError",
    "AudioFormatError",
    "AuthenticationError",
    "CircuitOpenError",
    "ConfigurationError",
    "DeadlineExceededError",
    "InvalidArgumentError",
    "NotFoundError",
    "PermanentError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "ServerError",
    "StreamInterruptedError",
    "TransientError",
    "UnavailableError",
    "UnimplementedError",
    "from_grpc_error",
]


class ASRError(Exception):
    """Root of every error raised by this package.

    Attributes:
        message: Human-readable description.
        code: The gRPC status code name (``"UNAVAILABLE"``) when the error came from a
            call, else ``None``.
    """

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code

    def __str__(self) -> str:
        return f"{self.message} [{self.code}]" if self.code else self.message


class TransientError(ASRError):
    """The same request may succeed later."""

    retryable = True


class UnavailableError(TransientError):
    """The server could not be reached or dropped the connection."""


class DeadlineExceededError(TransientError):
    """The call did not finish before its deadline."""


class ResourceExhaustedError(TransientError):
    """The server is out of capacity or a message exceeded a size limit."""


class StreamInterruptedError(TransientError):
    """A stream failed after results had arrived.

    It is not retried automatically: audio already sent would be recognised twice or
    lost. Results already yielded remain valid; start a new stream to continue.
    """


class CircuitOpenError(TransientError):
    """The circuit breaker for the endpoint is open, so the call was not attempted."""


class PermanentError(ASRError):
    """Retrying the same request will fail the same way."""


class InvalidArgumentError(PermanentError):
    """The server rejected the request's configuration or content."""


class AudioFormatError(InvalidArgumentError):
    """Audio that cannot be decoded: wrong encoding, odd byte count, unreadable file."""


class AuthenticationError(PermanentError):
    """Credentials are missing or invalid."""


class PermissionDeniedError(PermanentError):
    """Credentials are valid but not allowed to make this call."""


class NotFoundError(PermanentError):
    """The named model or resource does not exist on the server."""


class UnimplementedError(PermanentError):
    """The server does not implement the call."""


class ServerError(PermanentError):
    """The server failed internally."""


class ConfigurationError(PermanentError):
    """Local configuration is invalid (files, URIs, metadata)."""


_BY_STATUS: dict[grpc.StatusCode, type[ASRError]] = {
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgumentError,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidArgumentError,
    grpc.StatusCode.UNAUTHENTICATED: AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.UNIMPLEMENTED: UnimplementedError,
    grpc.StatusCode.INTERNAL: ServerError,
    grpc.StatusCode.UNKNOWN: ServerError,
    grpc.StatusCode.DATA_LOSS: ServerError,
    grpc.StatusCode.CANCELLED: ServerError,
    grpc.StatusCode.ABORTED: UnavailableError,
}


def from_grpc_error(exc: grpc.RpcError, *, results_seen: bool = False) -> ASRError:
    """Translate a gRPC error into the most specific :class:`ASRError`.

    Args:
        exc: The error raised by a ``grpc`` or ``grpc.aio`` call.
        results_seen: Whether the stream had already yielded results. A transient failure
            after results becomes :class:`StreamInterruptedError`, because replaying the
            stream would recognise audio twice.

    Returns:
        The translated error; the caller raises it ``from exc``.
    """
    # Sync errors are grpc.Call as well as RpcError; aio errors are AioRpcError. Both
    # expose code() and details(); a bare RpcError exposes neither.
    code_of = getattr(exc, "code", None)
    status = code_of() if callable(code_of) else None
    details_of = getattr(exc, "details", None)
    details = (details_of() if callable(details_of) else None) or str(exc) or "gRPC call failed"
    if not isinstance(status, grpc.StatusCode):
        return ServerError(details)
    cls = _BY_STATUS.get(status, ServerError)
    if results_seen and issubclass(cls, TransientError):
        cls = StreamInterruptedError
    return cls(details, code=status.name)
