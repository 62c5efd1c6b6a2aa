"""The own WebSocket contract's route (``docs/websocket-api.md``): sockets to
:class:`~asr_server.protocol.Session` to Riva and back.

Everything the contract says lives in :mod:`asr_server.protocol`; this module authenticates
and admits the connection (waiting in the admission queue when it is on), then a
:class:`~asr_server.contract_connection.ContractConnection` runs the session.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from urllib.parse import parse_qs

from fastapi import APIRouter, WebSocket
from fastapi.responses import PlainTextResponse

from asr.contract import ErrorCode
from asr.logs import ContextAdapter

from .connection import AsgiTransport
from .contract_connection import INTERFACE, ContractConnection
from .credentials import check_credentials, closed_for_origin
from .protocol import Session
from .routes_http import upgrade_required
from .state import GatewayDep, owner_of

__all__ = ["ContractConnection", "INTERFACE", "STREAM_PATH", "router"]

STREAM_PATH = "/v1/audio/transcriptions/stream"
"""The WebSocket endpoint."""

logger = logging.getLogger("asr.server")

router = APIRouter()


@router.get(
    STREAM_PATH,
    status_code=426,
    response_class=PlainTextResponse,
    summary="The WebSocket endpoint of the own contract (docs/websocket-api.md)",
    responses={426: {"description": "A plain HTTP request: upgrade to WebSocket."}},
    tags=["websocket"],
)
async def stream_needs_upgrade() -> PlainTextResponse:
    """The streaming contract is a WebSocket (``ws(s)://``); plain HTTP is refused."""
    return upgrade_required("this endpoint speaks WebSocket; see docs/websocket-api.md\n")


@router.websocket(STREAM_PATH)
async def stream(websocket: WebSocket, gw: GatewayDep) -> None:
    settings = gw.settings
    if await closed_for_origin(websocket, gw):
        return
    await websocket.accept()
    query = parse_qs(websocket.url.query, keep_blank_values=True)
    loop = asyncio.get_running_loop()
    session = Session(
        session_id=secrets.token_hex(8),
        limits=settings.limits,
        now=loop.time(),
        query=query,
        require_config=settings.require_config,
        recording=settings.recording,
    )
    log = ContextAdapter(logger, {"session_id": session.session_id})
    connection = ContractConnection(AsgiTransport(websocket), session, gw, log)
    decision = check_credentials(websocket, gw, log)
    if decision.refusal is not None:
        await connection.run(session.refuse(ErrorCode.UNAUTHORIZED, decision.refusal))
        return
    connection.owner = owner_of(decision.key_id)
    if not await connection.wait_for_slot():
        return
    with gw.admission.hold(connection, INTERFACE):
        client = websocket.client
        log.info("opened from %s", (client.host, client.port) if client else None)
        # Its clocks start now, not while it was queued.
        await connection.serve(session.open(loop.time()))
