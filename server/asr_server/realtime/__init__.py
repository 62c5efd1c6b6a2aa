"""NVIDIA's realtime transcription API (the Riva ASR NIM's ``/v1/realtime``), without I/O.

- :mod:`.config`: the transcription session object (POST answer, update, updated);
- :mod:`.events`: every client and server event, and the parser of client frames;
- :mod:`.errors`: the ``error`` object and the stable codes;
- :mod:`.transcript`: Riva results to ``...delta``/``...completed``, one item per utterance;
- :mod:`.audio`: the input audio buffer (append, commit, clear; ``pcm16`` and WAV);
- :mod:`.session`: :class:`RealtimeSession`, frames and Riva events in, actions out;
- :mod:`.handshake`: the POST answer and the token in the WebSocket subprotocols.

The routes that put it on the gateway's FastAPI app are :mod:`asr_server.routes_realtime`
(authenticate, admit) and :mod:`asr_server.realtime_connection` (run the
:class:`~asr_server.relay.RivaRelay`, carry out the actions), as
:mod:`asr_server.ws_contract` does for the own contract.
"""

from __future__ import annotations

from .config import ClientSecret, SessionPatch, SessionSettings, TranscriptionSession
from .errors import RealtimeErrorCode
from .events import (
    AnyClientEvent,
    AnyServerEvent,
    ErrorEvent,
    parse_client_event,
    server_event_adapter,
)
from .handshake import (
    SUBPROTOCOL,
    TOKEN_SUBPROTOCOL_PREFIX,
    session_object,
    token_from_subprotocols,
)
from .session import Action, RealtimeSession, Send

__all__ = [
    "Action",
    "AnyClientEvent",
    "AnyServerEvent",
    "ClientSecret",
    "ErrorEvent",
    "RealtimeErrorCode",
    "RealtimeSession",
    "SUBPROTOCOL",
    "Send",
    "SessionPatch",
    "SessionSettings",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "TranscriptionSession",
    "parse_client_event",
    "server_event_adapter",
    "session_object",
    "token_from_subprotocols",
]
