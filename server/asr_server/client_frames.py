"""The own contract's client text frames, checked: size, JSON, ``type``, then fields.

Two steps, because a session that is draining ignores a well-formed message of a known
type (with a warning) without validating its fields: :func:`read_text_frame` first,
:func:`validate_message` after. Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from asr.contract import AnyClientMessage, ErrorCode, client_message_adapter

from .stream_options import loads, validation_summary

__all__ = ["CLIENT_TYPES", "FrameRefusal", "read_text_frame", "validate_message"]

CLIENT_TYPES = frozenset({"config", "finalize", "keepalive", "end"})
"""The ``type`` of every client message."""


@dataclass(frozen=True, slots=True)
class FrameRefusal:
    """Why a text frame ends the session: the error code and what the client is told."""

    code: ErrorCode
    message: str


def read_text_frame(text: str, max_frame_bytes: int) -> tuple[str, dict[str, Any]] | FrameRefusal:
    """The ``type`` and the object of a text frame, or why it is refused."""
    if len(text) > max_frame_bytes or len(text.encode()) > max_frame_bytes:
        return FrameRefusal(
            ErrorCode.FRAME_TOO_LARGE, f"text frame is larger than {max_frame_bytes} bytes"
        )
    try:
        data = loads(text)
    except ValueError as exc:
        return FrameRefusal(ErrorCode.INVALID_JSON, f"text frame is not JSON: {exc}")
    if not isinstance(data, dict):
        return FrameRefusal(ErrorCode.INVALID_JSON, "text frame is not a JSON object")
    kind = data.get("type")
    if not isinstance(kind, str) or kind not in CLIENT_TYPES:
        return FrameRefusal(
            ErrorCode.UNKNOWN_MESSAGE_TYPE,
            f"unknown message type {kind!r}; expected one of {sorted(CLIENT_TYPES)}",
        )
    return kind, data


def validate_message(kind: str, data: dict[str, Any]) -> AnyClientMessage | FrameRefusal:
    """The message of a frame :func:`read_text_frame` accepted, or why its fields are not."""
    try:
        return client_message_adapter.validate_python(data)
    except ValidationError as exc:
        code = ErrorCode.INVALID_CONFIG if kind == "config" else ErrorCode.INVALID_MESSAGE
        return FrameRefusal(code, f"invalid {kind!r} message: {validation_summary(exc)}")
