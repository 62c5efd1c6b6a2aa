"""Log filters for the websockets server's records.

A connection that never sends a valid HTTP request (a port scanner, TLS spoken to a
plaintext port, a header websockets refuses) is the client's fault: websockets logs it at
ERROR with a traceback of a kilobyte or more, whose text carries the client's bytes. Here
it becomes one INFO line with the reason, redacted and with control bytes escaped, so a
burst of junk cannot fill the log or smuggle secrets and terminal escapes into it.
"""

from __future__ import annotations

import logging

from asr.logs import escape_controls, redact

__all__ = ["compact_handshake_failures"]

_REASON_CHARS = 200


def compact_handshake_failures(record: logging.LogRecord) -> bool:
    """Turn websockets' "opening handshake failed" traceback into one line (keeps all records)."""
    if record.msg != "opening handshake failed" or not record.exc_info:
        return True
    exc = record.exc_info[1]
    if exc is None or type(exc).__module__ != "websockets.exceptions":
        return True  # not the client's bytes: keep the traceback
    reasons = []
    cause: BaseException | None = exc
    while cause is not None:
        reasons.append(str(cause) or type(cause).__name__)
        cause = cause.__cause__
    reason = escape_controls(redact(": ".join(reasons)))
    if len(reason) > _REASON_CHARS:
        reason = reason[:_REASON_CHARS] + "..."
    record.msg, record.args = "opening handshake failed: %s", (reason,)
    record.exc_info, record.exc_text = None, None
    record.levelno, record.levelname = logging.INFO, "INFO"
    return True
