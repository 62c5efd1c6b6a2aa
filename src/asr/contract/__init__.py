"""The WebSocket contract of the gateway: its messages and codes, one definition for the
server that speaks it and the clients that read it. ``docs/websocket-api.md`` and its JSON
Schema are generated from these modules (``python -m asr_server.schema``)."""

from __future__ import annotations

from .codes import ERRORS, CloseCode, ErrorCode, ErrorSpec, WarningCode
from .messages import (
    AnyClientMessage,
    AnyServerMessage,
    ClientMessage,
    ConfigMessage,
    EndMessage,
    ErrorMessage,
    FinalizeMessage,
    KeepaliveMessage,
    LimitsInfo,
    ServerMessage,
    SessionBegin,
    SessionEnd,
    SessionQueued,
    SessionUpdated,
    StreamConfig,
    TranscriptFinal,
    TranscriptPartial,
    VadSpeechEnd,
    VadSpeechStart,
    WarningMessage,
    client_message_adapter,
    server_message_adapter,
)

__all__ = [
    "AnyClientMessage",
    "AnyServerMessage",
    "ClientMessage",
    "CloseCode",
    "ConfigMessage",
    "ERRORS",
    "EndMessage",
    "ErrorCode",
    "ErrorMessage",
    "ErrorSpec",
    "FinalizeMessage",
    "KeepaliveMessage",
    "LimitsInfo",
    "ServerMessage",
    "SessionBegin",
    "SessionEnd",
    "SessionQueued",
    "SessionUpdated",
    "StreamConfig",
    "TranscriptFinal",
    "TranscriptPartial",
    "VadSpeechEnd",
    "VadSpeechStart",
    "WarningCode",
    "WarningMessage",
    "client_message_adapter",
    "server_message_adapter",
]
