"""What the routes around a realtime session need, without I/O: the session object the
``POST /v1/realtime/transcription_sessions`` answer is, and the token in the WebSocket
subprotocols.

NVIDIA's client (``riva.client.realtime``, 2.27) posts ``{}`` (with ``Authorization:
Bearer <key>`` when given ``--mint-api-key``), reads ``client_secret.value`` from the
answer and opens ``/v1/realtime?intent=transcription`` offering the subprotocols
``realtime`` and ``realtime-token.<value>``; the server accepts with ``realtime`` alone so
the secret never comes back in a response header. Without a ``client_secret`` in the
answer the client connects without subprotocols.
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import ClientSecret, SessionSettings, TranscriptionSession

__all__ = [
    "SUBPROTOCOL",
    "TOKEN_SUBPROTOCOL_PREFIX",
    "session_object",
    "token_from_subprotocols",
]

SUBPROTOCOL = "realtime"
"""The subprotocol the server accepts with."""

TOKEN_SUBPROTOCOL_PREFIX = "realtime-token."
"""Prefix of the subprotocol that carries the client secret."""


def token_from_subprotocols(offered: Iterable[str]) -> str | None:
    """The client secret offered as ``realtime-token.<value>``, or ``None``.

    Args:
        offered: The ``Sec-WebSocket-Protocol`` entries, in order (Starlette's
            ``websocket.scope["subprotocols"]``).
    """
    for entry in offered:
        entry = entry.strip()
        if entry.startswith(TOKEN_SUBPROTOCOL_PREFIX):
            token = entry.removeprefix(TOKEN_SUBPROTOCOL_PREFIX)
            return token or None
    return None


def session_object(
    session_id: str,
    *,
    client_secret: ClientSecret | None,
    settings: SessionSettings | None = None,
) -> TranscriptionSession:
    """The answer to ``POST /v1/realtime/transcription_sessions``: the defaults a new
    session starts with, its id and the secret to connect with.

    Args:
        session_id: ``sess_<hex>``, as the NIM names sessions.
        client_secret: The token and its expiry; ``None`` where no auth is configured.
        settings: The defaults; the gateway's when ``None``.
    """
    base = settings or SessionSettings()
    return TranscriptionSession(
        id=session_id,
        client_secret=client_secret,
        **{name: getattr(base, name) for name in SessionSettings.model_fields},
    )
