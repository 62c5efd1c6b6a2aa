"""NVIDIA NIM's realtime transcription API on the gateway (the Riva ASR NIM's
``/v1/realtime``), so NVIDIA's own client (``riva.client.realtime.RealtimeClientASR``,
``scripts/asr/realtime_asr_client.py``) transcribes through it unchanged.

- ``POST /v1/realtime/transcription_sessions``: the session object a new session starts
  with. With API keys configured it takes ``Authorization: Bearer KEY`` (NVIDIA's
  ``--mint-api-key``) and its ``client_secret`` is a gateway token for that key
  (:func:`asr_server.tokens.issue_token`, ``token_ttl_seconds``); without keys the
  ``client_secret`` is ``null`` and the client connects without one. The body (NVIDIA's
  client posts ``{}``) is not read: settings go in ``transcription_session.update``.
- ``WS /v1/realtime?intent=transcription``: the token offered as the subprotocol
  ``realtime-token.<value>`` (beside ``realtime``, the one accepted), or as the own
  contract takes credentials (``Authorization: Bearer``, ``?token=``, ``?api_key=``); the
  Origin allow-list, the admission (interface ``realtime``), then a
  :class:`~asr_server.realtime_connection.RealtimeConnection` runs the session.
  ``?record=true`` and ``?enhance_on_end=true`` ask for a recording (issue 15) under
  ``ASR_SERVER_RECORDING``, as on the own contract; it belongs to the API key's owner.

The protocol itself is :mod:`asr_server.realtime` (no I/O). A refused connection is
accepted first and told why with an ``error`` event and a close code (``unauthorized``
4001, ``invalid_config`` 4002 for an intent other than ``transcription``,
``too_many_sessions`` 4006), as the own contract does; only a disallowed Origin is refused
before the handshake (403).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, Request, WebSocket
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import ValidationError

from asr.contract import StreamConfig
from asr.logs import ContextAdapter

from .connection import AsgiTransport
from .credentials import ErrorBody, check_credentials, closed_for_origin, issue_for
from .realtime import (
    SUBPROTOCOL,
    ClientSecret,
    RealtimeErrorCode,
    RealtimeSession,
    TranscriptionSession,
    session_object,
    token_from_subprotocols,
)
from .realtime_connection import INTERFACE, RealtimeConnection
from .routes_http import upgrade_required
from .state import GatewayDep, owner_of
from .stream_options import validation_summary

__all__ = [
    "INTENT",
    "MAX_BACKLOG_SECONDS",
    "REALTIME_PATH",
    "SESSIONS_PATH",
    "router",
]

REALTIME_PATH = "/v1/realtime"
"""The WebSocket endpoint (``?intent=transcription``)."""

SESSIONS_PATH = "/v1/realtime/transcription_sessions"
"""Where a client asks for a session object and its ``client_secret``."""

INTENT = "transcription"
"""The only ``intent`` served (the NIM's synthesis intent is text-to-speech)."""

MAX_BACKLOG_SECONDS = 10.0
"""Audio Riva may be behind before the gateway stops reading the client (back-pressure
for clients that send a file as fast as they read it)."""

_RECORDING_OPTIONS = ("record", "enhance_on_end")

logger = logging.getLogger("asr.server")

router = APIRouter(tags=["realtime"])

_SESSION_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "API keys are configured: no key, or a wrong one"},
    429: {"model": ErrorBody, "description": "Too many failed attempts from this address"},
}


def _new_session_id() -> str:
    return f"sess_{secrets.token_hex(8)}"


def _recording_options(query: dict[str, list[str]]) -> tuple[StreamConfig, str | None]:
    """``?record=`` and ``?enhance_on_end=`` (issue 15), read as the own contract reads
    them (its :class:`~asr.contract.StreamConfig` fields); NVIDIA's client sends neither.

    Returns:
        The options (both ``false`` when not given), and why they are invalid, if they are.
    """
    given = {name: query[name][-1] for name in _RECORDING_OPTIONS if query.get(name)}
    try:
        return StreamConfig.model_validate(given), None
    except ValidationError as exc:
        return StreamConfig(), f"invalid recording options: {validation_summary(exc)}"


@router.post(SESSIONS_PATH, response_model=TranscriptionSession, responses=_SESSION_RESPONSES)
async def create_transcription_session(request: Request, gw: GatewayDep) -> JSONResponse:
    """A transcription session's defaults and the secret to open the WebSocket with.

    With API keys configured, send one as ``Authorization: Bearer KEY``:
    ``client_secret.value`` is then a token for it, offered on the WebSocket as the
    subprotocol ``realtime-token.<value>`` until ``client_secret.expires_at`` (Unix
    seconds). Without keys ``client_secret`` is ``null``. The answer is
    ``Cache-Control: no-store``.
    """
    secret: ClientSecret | None = None
    if gw.auth.enabled:
        issued = issue_for(request, gw, "realtime client secret")
        if isinstance(issued, JSONResponse):
            return issued
        token, claims = issued
        secret = ClientSecret(value=token, expires_at=claims.expires_at)
    body = session_object(_new_session_id(), client_secret=secret)
    return JSONResponse(body.model_dump(mode="json"), headers={"Cache-Control": "no-store"})


@router.get(
    REALTIME_PATH,
    status_code=426,
    response_class=PlainTextResponse,
    summary="The WebSocket endpoint of NVIDIA's realtime API",
    responses={426: {"description": "A plain HTTP request: upgrade to WebSocket."}},
)
async def realtime_needs_upgrade() -> PlainTextResponse:
    """``/v1/realtime?intent=transcription`` is a WebSocket (``ws(s)://``)."""
    return upgrade_required(
        "this endpoint speaks WebSocket (?intent=transcription); see docs/operations.md\n"
    )


@router.websocket(REALTIME_PATH)
async def realtime(websocket: WebSocket, gw: GatewayDep) -> None:
    settings = gw.settings
    if await closed_for_origin(websocket, gw):
        return
    offered = [str(p) for p in websocket.scope.get("subprotocols", [])]
    # Only ``realtime`` is ever echoed, so the secret never comes back in a header.
    await websocket.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in offered else None)
    loop = asyncio.get_running_loop()
    query = parse_qs(websocket.url.query, keep_blank_values=True)
    recording, bad_recording = _recording_options(query)
    session = RealtimeSession(
        session_id=_new_session_id(),
        limits=settings.limits,
        now=loop.time(),
        require_update=settings.require_config,
        max_backlog_seconds=MAX_BACKLOG_SECONDS,
        recording=settings.recording,
        record=recording.record,
        enhance_on_end=recording.enhance_on_end,
    )
    log = ContextAdapter(logger, {"session_id": session.session_id})
    connection = RealtimeConnection(AsgiTransport(websocket), session, gw, log)
    token = token_from_subprotocols(offered)
    decision = check_credentials(websocket, gw, log, tokens=[token] if token is not None else [])
    if decision.refusal is not None:
        await connection.run(session.refuse(RealtimeErrorCode.UNAUTHORIZED, decision.refusal))
        return
    connection.owner = owner_of(decision.key_id)  # of the session's recording
    intents = query.get("intent", [])
    if intents != [INTENT]:
        shown = ", ".join(repr(i[:50]) for i in intents) or "none"
        log.info("refused: intent %s", shown)
        message = f"this endpoint serves ?intent={INTENT} only (speech to text); got intent {shown}"
        await connection.run(session.refuse(RealtimeErrorCode.INVALID_CONFIG, message))
        return
    if bad_recording is not None:
        log.info("refused: %s", bad_recording)
        await connection.run(session.refuse(RealtimeErrorCode.INVALID_CONFIG, bad_recording))
        return
    if (refusal := gw.admission.refusal(loop.time())) is not None:
        log.warning("refused: %s", refusal.log)
        code = RealtimeErrorCode(refusal.code.value)
        await connection.run(session.refuse(code, refusal.message))
        return
    with gw.admission.hold(connection, INTERFACE):
        client = websocket.client
        log.info("realtime session opened from %s", (client.host, client.port) if client else None)
        await connection.serve(session.open())
