"""The gateway's HTTP routes: probes, metrics, browser tokens, the demo page.

``GET /healthz`` (the process is up), ``GET /readyz`` (Riva answers its health check),
``GET /metrics`` (Prometheus), ``POST /v1/tokens`` (a short-lived browser token for an API
key), the demo page at ``/`` with its files and ``/favicon.ico``. ``GET /v1/tokens``, the
only form the websockets server could parse, still works for one release, marked
deprecated (RFC 9745 ``Deprecation`` header, a ``Link`` to the POST operation).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.types import Receive, Scope, Send

from .credentials import ErrorBody, issue_for
from .metrics import CONTENT_TYPE
from .responses import not_found, static_response
from .state import Gateway, GatewayDep

__all__ = [
    "ErrorBody",
    "HealthBody",
    "METRICS_PATH",
    "ReadyBody",
    "StaticFiles",
    "TOKEN_PATH",
    "TokenBody",
    "allowed_methods",
    "method_not_allowed",
    "router",
    "upgrade_required",
]

TOKEN_PATH = "/v1/tokens"
"""Issues browser tokens: ``POST`` with the API key in ``Authorization: Bearer`` (never the
URL); the answer is ``Cache-Control: no-store``."""

METRICS_PATH = "/metrics"
"""Prometheus text exposition."""

_DEPRECATION_LINK = '</openapi.json#/paths/~1v1~1tokens/post>; rel="deprecation"'

router = APIRouter()


class HealthBody(BaseModel):
    """The process is up."""

    status: Literal["ok"] = "ok"


class ReadyBody(BaseModel):
    """Whether the backend answered its health check (the value names Riva for either
    backend, as clients have always read it)."""

    status: Literal["ready", "riva unavailable"]


class TokenBody(BaseModel):
    """A browser token: connect with ``?token=TOKEN`` until it expires."""

    token: str
    expires_at: int
    """Unix seconds."""
    expires_in: int
    """Seconds from now."""


def upgrade_required(message: str) -> PlainTextResponse:
    """426 for a plain HTTP request to a WebSocket endpoint (RFC 9110 15.5.22: it names
    the protocol to upgrade to)."""
    return PlainTextResponse(
        message, status_code=426, headers={"Upgrade": "websocket", "Connection": "Upgrade"}
    )


@router.get("/healthz", response_model=HealthBody, tags=["probes"])
async def healthz() -> HealthBody:
    """Liveness: the process is up (Riva is not asked)."""
    return HealthBody()


@router.get(
    "/readyz",
    response_model=ReadyBody,
    responses={503: {"model": ReadyBody, "description": "the backend does not answer"}},
    tags=["probes"],
)
async def readyz(gw: GatewayDep) -> JSONResponse:
    """Readiness: the backend answers its health check within ``readiness_timeout`` (Riva:
    its gRPC health service says SERVING; Dynamo: a worker's load report says it serves)."""
    ready = await gw.client.health(timeout=gw.settings.readiness_timeout)
    body = ReadyBody(status="ready" if ready else "riva unavailable")
    return JSONResponse(body.model_dump(), status_code=200 if ready else 503)


@router.get(
    METRICS_PATH,
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE: {}}, "description": "Prometheus text format"}},
    tags=["probes"],
)
async def metrics(gw: GatewayDep) -> Response:
    """The gateway's and its Riva client's metrics."""
    return Response(gw.metrics.render(), media_type=CONTENT_TYPE)


_TOKEN_RESPONSES: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "No API key, or a wrong one"},
    404: {"model": ErrorBody, "description": "No API keys are configured"},
    429: {"model": ErrorBody, "description": "Too many failed attempts from this address"},
}


def _issue(request: Request, gw: Gateway) -> JSONResponse:
    if not gw.auth.enabled:
        error = ErrorBody(error="tokens are issued only when ASR_SERVER_API_KEYS is set")
        return JSONResponse(error.model_dump(), status_code=404)
    issued = issue_for(request, gw, "token")
    if isinstance(issued, JSONResponse):
        return issued
    token, claims = issued
    ttl = int(gw.settings.token_ttl_seconds)
    body = TokenBody(token=token, expires_at=claims.expires_at, expires_in=ttl)
    return JSONResponse(body.model_dump(), headers={"Cache-Control": "no-store"})


@router.post(TOKEN_PATH, response_model=TokenBody, responses=_TOKEN_RESPONSES, tags=["auth"])
async def issue_token(request: Request, gw: GatewayDep) -> JSONResponse:
    """A browser token for the API key sent as ``Authorization: Bearer KEY`` (never in
    the URL). The answer is ``Cache-Control: no-store``."""
    return _issue(request, gw)


@router.get(
    TOKEN_PATH,
    response_model=TokenBody,
    responses=_TOKEN_RESPONSES,
    deprecated=True,
    tags=["auth"],
)
async def issue_token_by_get(request: Request, gw: GatewayDep) -> JSONResponse:
    """Deprecated: the same as ``POST /v1/tokens``, kept for one release."""
    gw.notice_once(
        "get-tokens", "GET /v1/tokens is deprecated and goes in the next release: use POST"
    )
    response = _issue(request, gw)
    response.headers["Deprecation"] = "true"
    response.headers["Link"] = _DEPRECATION_LINK
    return response


@router.get("/favicon.ico", response_class=Response, tags=["demo page"])
async def favicon(gw: GatewayDep) -> Response:
    """The demo page's icon under the name browsers ask for by themselves (204 without
    a demo page)."""
    static = gw.settings.static_dir
    if static is not None and (static / "favicon.svg").is_file():
        return static_response(static, "/favicon.svg")
    return Response(b"", status_code=204, media_type="image/svg+xml")


@router.get("/", response_class=Response, tags=["demo page"])
async def demo_page(gw: GatewayDep) -> Response:
    """The demo page (``index.html`` of ``static_dir``); its other files are served under
    their names."""
    static = gw.settings.static_dir
    return static_response(static, "/") if static is not None else not_found()


class StaticFiles:
    """The files of ``root`` for ``GET`` and ``HEAD`` (mounted last, at ``/``): 404 for
    what is not there, 405 for other methods on what is."""

    def __init__(self, root: Path) -> None:
        self.root = root

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1000})  # 403 before the handshake
            return
        response = static_response(self.root, scope["path"])
        if response.status_code == 200:
            allowed = {"GET", "HEAD"}
        else:
            # Mounted at /, this app matches every path: a route's path asked with
            # another method ends here too, and is a 405, not a 404.
            allowed = allowed_methods(scope)
        if allowed and scope["method"] not in allowed:
            response = method_not_allowed(allowed)
        await response(scope, receive, send)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def allowed_methods(scope: Scope) -> set[str]:
    """Every method some route of the app takes at the scope's path (Starlette's own
    405 names only the first matching route's). Mounts (the demo page's files, which
    match every path) are left out."""
    probe = dict(scope, type="http", root_path=scope.get("app_root_path", ""))
    routes = [r for r in scope["app"].router.routes if not isinstance(r, Mount)]
    return {
        method
        for method in _METHODS
        if any(r.matches(dict(probe, method=method))[0] is Match.FULL for r in routes)
    }


def method_not_allowed(allowed: set[str]) -> Response:
    """405 with the ``Allow`` header (RFC 9110 15.5.6)."""
    return JSONResponse(
        ErrorBody(error="method not allowed").model_dump(),
        status_code=405,
        headers={"Allow": ", ".join(sorted(allowed))},
    )
