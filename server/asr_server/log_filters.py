"""Log filters for the records uvicorn writes on the gateway's behalf.

uvicorn logs on ``uvicorn.error``: at INFO a line per WebSocket handshake (with the query
string, where ``?api_key=`` and ``?token=`` travel) and its start and stop chatter, at
WARNING "Invalid HTTP request received." for every request h11 cannot parse (a port
scanner, TLS spoken to a plaintext port). The gateway's own log says all of it already,
with the session id and the reason (:mod:`asr_server.connection_guard` writes the line for
a bad request), so those records are dropped; what remains (real warnings, tracebacks of
bugs) is redacted with control bytes escaped. Access logging is off: the gateway logs
refused requests itself, and a probe answered 200 is not worth a line.
"""

from __future__ import annotations

import logging

from asr.logs import RedactingFilter

__all__ = ["quiet_uvicorn", "uvicorn_records"]

_DUPLICATES = frozenset({"Invalid HTTP request received."})


def uvicorn_records(record: logging.LogRecord) -> bool:
    """Keep uvicorn's warnings and errors, except those the gateway logs better itself."""
    return record.levelno >= logging.WARNING and record.msg not in _DUPLICATES


def quiet_uvicorn() -> None:
    """Install :func:`uvicorn_records` and redaction on uvicorn's loggers (once)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        log = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in log.filters):
            log.addFilter(uvicorn_records)
            log.addFilter(RedactingFilter())
