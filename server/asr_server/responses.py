"""Plain HTTP responses of the gateway: JSON, text, static files, the common headers.

Every HTTP response gets :data:`SECURITY_HEADERS` and ``Cache-Control: no-cache`` unless
it set its own (tokens are ``no-store``); the middleware in :mod:`asr_server.asgi` adds
them, so a route only builds its body.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from starlette.responses import PlainTextResponse, Response

__all__ = ["SECURITY_HEADERS", "not_found", "static_response"]

# The AudioWorklet module must be served as JavaScript; the platform table may lack .mjs.
_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
    ".wav": "audio/wav",
}

SECURITY_HEADERS = (
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
)
"""Headers on every HTTP response."""


def not_found() -> Response:
    """The gateway's 404."""
    return PlainTextResponse("not found\n", status_code=404)


def static_response(root: Path, url_path: str) -> Response:
    """The file under ``root`` that ``url_path`` names (``/`` is ``index.html``), or 404.

    Paths that leave ``root`` (``..``, symlinks out) are answered with 404.
    """
    relative = url_path.lstrip("/") or "index.html"
    if relative.endswith("/"):
        relative += "index.html"
    base = root.resolve()
    target = (base / relative).resolve()
    if not target.is_relative_to(base) or not target.is_file():
        return not_found()
    content_type = _TYPES.get(target.suffix.lower()) or (
        mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    )
    return Response(target.read_bytes(), media_type=content_type)
