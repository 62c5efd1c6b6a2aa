"""Log formatting for the processes this package runs: JSON lines or text, secrets redacted.

Library modules only call ``logging.getLogger("asr....")``; nothing here runs at import.
An entry point (``asr serve``) calls :func:`configure_logging` once. Context such as
``session_id`` and ``stream_id`` travels in the record's ``extra`` (see
:class:`ContextAdapter`), so the JSON formatter emits it as fields a log collector can
index, and the text formatter appends it.

Stdlib :mod:`logging` and :mod:`json` rather than python-json-logger: the formatter is
thirty lines, and the redaction and context handling needed here would be written anyway.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import unquote_plus

__all__ = [
    "ContextAdapter",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "escape_controls",
    "redact",
]

# Attributes every LogRecord has; anything else on a record came from ``extra``.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}

# Credentials that can reach a log line through a request line, headers or an exception's
# text (websockets logs request lines and headers at DEBUG, and puts a header value it
# cannot parse into the exception it raises): query parameters, header values, bearer
# tokens. Query names are compared after percent-decoding: ``api%5Fkey=`` authenticates
# like ``api_key=`` and must be redacted like it.
_SECRET_PARAMS = frozenset({"api_key", "apikey", "token", "access_token"})
_QUERY_PAIR = re.compile(r"(?P<name>[\w%.~+-]+)=(?P<value>[^&\s\"'#]*)")
_SECRET_HEADER = re.compile(
    r"(?i)\b(authorization|proxy-authorization|x-api-key)(['\"]?\s*[:=,]\s*['\"]?)[^\r\n'\"]*"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s'\"]+")
# websockets names no header in "invalid HTTP header value: ...": the value may be a key.
_BAD_HEADER = re.compile(r"(?i)(invalid HTTP header (?:value|line)): [^\r\n]*")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _redact_pair(match: re.Match[str]) -> str:
    name = unquote_plus(match["name"]).lower()
    return f"{match['name']}=***" if name in _SECRET_PARAMS else match[0]


def redact(text: str) -> str:
    """``text`` with API keys, tokens and Authorization header values replaced by ``***``."""
    text = _QUERY_PAIR.sub(_redact_pair, text)
    text = _SECRET_HEADER.sub(r"\1\2***", text)
    text = _BEARER.sub(r"\1\2***", text)
    return _BAD_HEADER.sub(r"\1: ***", text)


def escape_controls(text: str) -> str:
    """Control characters other than newline and tab as ``\\xNN``: a client's bytes must not
    reach a terminal or a log file raw."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text)


class RedactingFilter(logging.Filter):
    """Redacts a record's message (arguments merged in first) and its exception text."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def _context(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts``, ``level``, ``logger``, ``message``, the record's
    ``extra`` fields (``session_id``, ``stream_id``, ...) and ``exc_info`` when present."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        data |= _context(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            data["exc_info"] = record.exc_text
        return json.dumps(data, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [key=value ...]`` with the record's ``extra`` fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = escape_controls(super().format(record))
        context = _context(record)
        if not context:
            return text
        first, newline, rest = text.partition("\n")
        fields = " ".join(f"{k}={v}" for k, v in context.items())
        return f"{first} [{fields}]{newline}{rest}"


class ContextAdapter(logging.LoggerAdapter[logging.Logger]):
    """A logger adapter whose ``extra`` (e.g. ``{"session_id": ...}``) is merged into each
    record's, rather than replacing what the call passes."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def configure_logging(
    level: str = "INFO", fmt: Literal["text", "json"] = "text", *, stream: Any = None
) -> None:
    """Send every log record to ``stream`` (standard error) in ``fmt``, secrets redacted.

    Replaces the root logger's handlers, so calling it again (or after
    ``logging.basicConfig``) switches the format instead of duplicating lines.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
