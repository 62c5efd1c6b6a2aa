"""What the command line says when something goes wrong: one line, and what to try.

The library's errors carry gRPC's own detail, which names internal addresses and TLS
library codes; a person at a terminal needs the cause and the next step instead.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from ..errors import (
    ASRError,
    AudioFormatError,
    AuthenticationError,
    CircuitOpenError,
    DeadlineExceededError,
    UnavailableError,
)
from ..settings import RivaSettings

__all__ = ["describe"]


def describe(exc: BaseException, settings: RivaSettings | None = None) -> str:
    """A one-line message for ``exc``, with a hint where one helps."""
    if isinstance(exc, ValidationError):
        return "; ".join(_validation_message(error) for error in exc.errors())
    where = settings.uri if settings is not None else "the server"
    detail = str(exc)
    if isinstance(exc, FileNotFoundError):
        return f"{exc.filename}: no such file"
    if isinstance(exc, IsADirectoryError | PermissionError):
        return f"{exc.filename}: {exc.strerror}"
    if isinstance(exc, AudioFormatError):
        return detail
    if isinstance(exc, UnavailableError | CircuitOpenError):
        lowered = detail.lower()
        if "handshake" in lowered or "ssl" in lowered or "tls" in lowered:
            if settings is not None and settings.tls:
                return (
                    f"TLS handshake with {where} failed: does it serve TLS? "
                    "Drop --use-ssl for a plaintext server such as asr riva-local, or "
                    "pass --ssl-root-cert for a private CA"
                )
            return f"{where} speaks TLS: add --use-ssl (and --ssl-root-cert for a private CA)"
        return f"cannot reach {where}: is a Riva server or asr riva-local running there?"
    if isinstance(exc, DeadlineExceededError):
        return f"{where} did not answer in time ({detail}); try a larger --timeout"
    if isinstance(exc, AuthenticationError):
        return f"{where} refused the credentials: {detail}"
    if isinstance(exc, ASRError):
        return f"{type(exc).__name__}: {detail}"
    return detail


def _validation_message(error: ErrorDetails) -> str:
    message = error["msg"].removeprefix("Value error, ")
    field = ".".join(str(part) for part in error["loc"])
    return f"{field}: {message}" if field else message
