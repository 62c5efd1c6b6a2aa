"""The credential check every route of the gateway makes, what it logs, and the HTTP
answer to a refusal.

The own WebSocket contract, NVIDIA's realtime API, the REST transcriptions, the sessions
API and WebRTC read a request's credentials here, so they accept the same ones, feed the
same back-off and log the same lines. The decision itself is
:class:`~asr_server.auth.Authenticator`'s (no I/O, clocks passed in); this module reads
the request, reads the clocks and logs. What is logged names a key by its fingerprint
and a token by its id, never the secret itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.websockets import WebSocket

from .auth import Decision, bearer, matching_key, origin_allowed, refusal_status
from .state import Gateway, client_address
from .tokens import TokenClaims

__all__ = [
    "ErrorBody",
    "allowed_origin",
    "check_credentials",
    "closed_for_origin",
    "issue_for",
    "refusal_response",
]

logger = logging.getLogger("asr.server")

Log = logging.Logger | logging.LoggerAdapter[Any]
"""Where a route logs (its session's adapter, or the module's logger)."""


class ErrorBody(BaseModel):
    """Why a request was refused."""

    error: str


def allowed_origin(connection: HTTPConnection, gw: Gateway) -> bool:
    """Whether the request's ``Origin`` passes the allow-list (a refusal is logged)."""
    origin = connection.headers.get("origin")
    if origin_allowed(gw.settings.allowed_origins, origin):
        return True
    logger.info("refused: origin %s is not allowed", origin)
    return False


async def closed_for_origin(websocket: WebSocket, gw: Gateway) -> bool:
    """Close ``websocket`` before the handshake (uvicorn answers 403) when its ``Origin``
    is not allowed; whether it was closed."""
    if allowed_origin(websocket, gw):
        return False
    await websocket.close()
    return True


def check_credentials(
    connection: HTTPConnection,
    gw: Gateway,
    log: Log = logger,
    *,
    tokens: Sequence[str] = (),
    query_keys: bool = True,
    bearer_tokens: bool = False,
) -> Decision:
    """The credentials of a request (HTTP or WebSocket), checked and logged.

    Reads ``?api_key=``, ``?token=`` and ``Authorization: Bearer``.

    Args:
        connection: The request.
        gw: The gateway (its authenticator holds the keys and the back-off).
        log: Where the outcome is logged.
        tokens: Tokens offered elsewhere in the request (the realtime API's subprotocol).
        query_keys: Whether ``?api_key=`` counts; the REST route takes keys only as a
            Bearer header, where OpenAI's SDK sends them.
        bearer_tokens: Whether a Bearer value that is a browser token (``v1.``, and not a
            configured key) counts as that token: OpenAI's SDK sends whatever it was
            given as its API key so.
    """
    query = connection.query_params
    header = connection.headers.get("authorization")
    offered = [*query.getlist("token"), *tokens]
    value = bearer(header) if bearer_tokens else None
    if value and value.startswith("v1.") and not matching_key(value, gw.auth.api_keys):
        offered, header = [*offered, value], None
    address = client_address(connection)
    decision = gw.auth.check(
        address,
        query_keys=query.getlist("api_key") if query_keys else (),
        query_tokens=offered,
        authorization=header,
        now=time.monotonic(),
        wall=time.time(),
    )
    if decision.retry_after is not None:
        log.info("refused: too many failed attempts from %s", address)
    elif not decision.allowed:
        log.info("refused: %s", decision.refusal, extra={"key_id": decision.key_id})
    elif decision.token_id is not None:
        log.info("authenticated by token %s of key %s", decision.token_id, decision.key_id)
    elif decision.key_id is not None:
        log.info("authenticated by API key %s", decision.key_id)
    return decision


def refusal_response(decision: Decision) -> JSONResponse:
    """The HTTP answer to a refused credential: 429 or 401 (:func:`refusal_status`)."""
    status, headers = refusal_status(decision)
    body = ErrorBody(error=decision.refusal or "")
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


def issue_for(
    connection: HTTPConnection, gw: Gateway, purpose: str
) -> tuple[str, TokenClaims] | JSONResponse:
    """A token for the API key sent as ``Authorization: Bearer``, or the refusal to send.

    Args:
        connection: The request asking for the token.
        gw: The gateway.
        purpose: What the token is called in the log (``token``, ``realtime client
            secret``).
    """
    ttl = gw.settings.token_ttl_seconds
    issued = gw.auth.issue(
        client_address(connection),
        connection.headers.get("authorization"),
        now=time.monotonic(),
        wall=time.time(),
        ttl=ttl,
    )
    if issued.token is None or issued.claims is None:
        if issued.decision.retry_after is None:
            logger.info("%s refused: missing or invalid API key", purpose)
        return refusal_response(issued.decision)
    claims = issued.claims
    logger.info(
        "%s issued",
        purpose,
        extra={"token_id": claims.token_id, "key_id": claims.key_id, "ttl": ttl},
    )
    return issued.token, claims
