"""The gateway's ASGI application: FastAPI with the route modules mounted.

:func:`build_app` makes the app for one :class:`~asr_server.state.Gateway` (on
``app.state.gateway``). Route modules are ``APIRouter`` s: the HTTP routes
(:mod:`asr_server.routes_http`), the own WebSocket contract
(:mod:`asr_server.ws_contract`); a new interface is one more ``app.include_router(...)``
(before the demo page's files, mounted last at ``/``).

Around every route, :class:`HttpEdges` keeps what the websockets server did on its own:
request lines and headers logged at DEBUG (credentials redacted), each refused request
(4xx, 5xx) one INFO line and successful ones none, and the same headers on every HTTP
response (:data:`~asr_server.responses.SECURITY_HEADERS`, ``Cache-Control: no-cache``
unless the route set one).
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asr.logs import RedactingFilter

from . import routes_http, webrtc, ws_contract
from .responses import SECURITY_HEADERS, not_found
from .routes_realtime import router as realtime_router
from .routes_rest import router as rest_router
from .routes_sessions import router as sessions_router
from .state import Gateway

__all__ = ["HttpEdges", "build_app"]

logger = logging.getLogger("asr.server")
request_logger = logging.getLogger("asr.server.requests")
if not any(isinstance(f, RedactingFilter) for f in request_logger.filters):
    # Request lines carry ?api_key= and ?token=, headers Authorization: redacted before
    # any handler (caplog's included) sees the record.
    request_logger.addFilter(RedactingFilter())


def build_app(gateway: Gateway) -> FastAPI:
    """The FastAPI app serving ``gateway``'s routes; ``/openapi.json`` describes them."""
    app = FastAPI(
        title="asr gateway",
        summary="Real-time speech-to-text in front of NVIDIA Riva",
        description=(
            "HTTP routes of the gateway. The streaming contract is a WebSocket at "
            f"`{ws_contract.STREAM_PATH}`, documented in docs/websocket-api.md."
        ),
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.gateway = gateway
    app.include_router(routes_http.router)
    app.include_router(ws_contract.router)
    app.include_router(webrtc.router_for(gateway))
    app.include_router(realtime_router)
    app.include_router(rest_router)
    app.include_router(sessions_router)
    app.add_exception_handler(HTTPException, _http_error)
    static = gateway.settings.static_dir
    if static is not None:
        app.mount("/", routes_http.StaticFiles(static), name="static")
    app.add_middleware(HttpEdges)
    return app


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return not_found()
    if exc.status_code == 405:
        return routes_http.method_not_allowed(routes_http.allowed_methods(request.scope))
    return JSONResponse(
        {"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers
    )


class HttpEdges:
    """ASGI middleware: DEBUG request lines, a line per refused request, common headers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        if request_logger.isEnabledFor(logging.DEBUG):
            _log_request(scope)
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers: list[Any] = list(message.get("headers", []))
                names = {name.lower() for name, _ in headers}
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-cache"))
                headers += [(n.encode(), v.encode()) for n, v in SECURITY_HEADERS]
                message = {**message, "headers": [(_canonical(n), v) for n, v in headers]}
                status = int(message["status"])
                if status >= 400:
                    logger.info(
                        "rejected (%d %s): %s %s",
                        status,
                        _phrase(status),
                        scope["method"],
                        scope["path"],
                    )
            await send(message)

        await self.app(scope, receive, send_with_headers)


_SPECIAL = {b"www": b"WWW", b"etag": b"ETag"}


def _canonical(name: bytes) -> bytes:
    """``www-authenticate`` as ``WWW-Authenticate``: Starlette lower-cases header names and
    h11 sends them as given; clients that look headers up case-sensitively (a ``dict`` of
    them) keep finding what the websockets server sent."""
    return b"-".join(_SPECIAL.get(part, part.capitalize()) for part in name.lower().split(b"-"))


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _log_request(scope: Scope) -> None:
    target = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
    if query := scope.get("query_string", b""):
        target += "?" + query.decode("latin-1")
    method = scope.get("method", "GET")
    request_logger.debug("< %s %s HTTP/%s", method, target, scope.get("http_version", "1.1"))
    for name, value in scope.get("headers", []):
        request_logger.debug("< %s: %s", name.decode("latin-1").title(), value.decode("latin-1"))
