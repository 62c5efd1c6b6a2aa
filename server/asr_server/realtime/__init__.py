"""NVIDIA's realtime transcription API (the Riva ASR NIM's ``/v1/realtime``), without I/O.

- :mod:`.config`: the transcription session object (POST answer, update, updated);
- :mod:`.events`: every client and server event, and the parser of client frames;
- :mod:`.errors`: the ``error`` object and the stable codes;
- :mod:`.transcript`: Riva results to ``...delta``/``...completed``, one item per utterance;
- :mod:`.audio`: the input audio buffer (append, commit, clear; ``pcm16`` and WAV);
- :mod:`.forwarded`: the audio sent to Riva, what it processed, the back-pressure;
- :mod:`.actions`: the session's :class:`Send` of an event beside the shared actions;
- :mod:`.session`: :class:`RealtimeSession`, frames and Riva events in, actions out;
- :mod:`.handshake`: the POST answer and the token in the WebSocket subprotocols.

The routes that put it on the gateway's FastAPI app are :mod:`asr_server.routes_realtime`
(authenticate, admit) and :mod:`asr_server.realtime_connection` (run the
:class:`~asr_server.relay.RivaRelay`, carry out the actions), as
:mod:`asr_server.ws_contract` does for the own contract.

The exchange, in the order NVIDIA's client (``riva.client.realtime``, 2.27) runs it::

    server  conversation.created                      (open)
    client  transcription_session.update              -> transcription_session.updated
    client  input_audio_buffer.append {audio[, runtime_config.force_eou]}   (buffered)
    client  input_audio_buffer.commit                 -> input_audio_buffer.committed
            ... append + commit per chunk ...
    server  conversation.item.input_audio_transcription.delta       (Riva partials)
    server  conversation.item.input_audio_transcription.completed   (Riva finals)
    client  input_audio_buffer.done                   (commits the rest, ends the audio)
    server  ...completed {is_last_result: true}
    server  transcription_session.recorded            (a recorded session only)
    server  close 1000
"""

from __future__ import annotations

from .actions import Action, Send
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
from .session import RealtimeSession

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
