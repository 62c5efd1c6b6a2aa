"""Plain HTTP responses served beside the WebSocket endpoint: static files and probes.

``websockets`` answers any request for which ``process_request`` returns a response
instead of upgrading it; these helpers build those responses.
"""

from __future__ import annotations

import json
import mimetypes
from http import HTTPStatus
from pathlib import Path
from typing import Any

from websockets.datastructures import Headers
from websockets.http11 import Response

__all__ = ["bytes_response", "json_response", "static_response", "text_response"]

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

_SECURITY_HEADERS = (
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    ("Cross-Origin-Opener-Policy", "same-origin"),
)


def _response(
    status: HTTPStatus,
    body: bytes,
    content_type: str,
    extra: tuple[tuple[str, str], ...] = (),
    cache: str = "no-cache",
) -> Response:
    headers = Headers(
        [
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
            ("Cache-Control", cache),
            # websockets closes the TCP connection after an HTTP response.
            ("Connection", "close"),
            *_SECURITY_HEADERS,
            *extra,
        ]
    )
    return Response(status.value, status.phrase, headers, body)


def bytes_response(status: HTTPStatus, body: bytes, content_type: str) -> Response:
    """A response with ``body`` as is (e.g. the metrics exposition)."""
    return _response(status, body, content_type)


def text_response(status: HTTPStatus, text: str) -> Response:
    """A plain-text response."""
    return _response(status, text.encode(), "text/plain; charset=utf-8")


def json_response(
    status: HTTPStatus,
    data: Any,
    *,
    headers: tuple[tuple[str, str], ...] = (),
    secret: bool = False,
) -> Response:
    """A JSON response; ``secret`` ones (tokens) are marked ``no-store`` for every cache."""
    return _response(
        status,
        json.dumps(data).encode(),
        "application/json",
        headers,
        cache="no-store" if secret else "no-cache",
    )


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
        return text_response(HTTPStatus.NOT_FOUND, "not found\n")
    content_type = _TYPES.get(target.suffix.lower()) or (
        mimetypes.guess_type(target.name)[0] or "application/octet-stream"
    )
    return _response(HTTPStatus.OK, target.read_bytes(), content_type)
