"""Backend failures reach a WebSocket client as a typed error in plain words, and the
backend's own text (gRPC details with internal addresses) only reaches the server log.

A real websockets client, the gateway on loopback, and a Riva URI where nothing listens:
a closed port, or an embedded server that was started and stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from asr.contract import ERRORS, ErrorCode

from .conftest import ServerThread
from .helpers import closed_port, error_of, gateway, receive_all, send_audio

GENERIC = "the speech backend is unavailable; try again"


@pytest.fixture(scope="module")
def stopped_server_port() -> Iterator[int]:
    """The port of an embedded server that ran and was stopped."""
    server = ServerThread()
    port = server.port
    server.stop()
    yield port


async def stream_into(port: int) -> tuple[list[dict[str, Any]], Any]:
    async with gateway(f"127.0.0.1:{port}") as gw, connect(gw.url) as ws:
        receiver = asyncio.create_task(receive_all(ws))
        await send_audio(ws, b"\x00\x00" * 16_000 * 10, speed=1.0, then=())
        messages = await receiver
    return messages, ws


@pytest.mark.parametrize("backend", ["closed port", "stopped server"])
async def test_backend_down_error_names_no_address(
    backend: str, stopped_server_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    port = closed_port() if backend == "closed port" else stopped_server_port
    with caplog.at_level(logging.WARNING, logger="asr.server"):
        messages, ws = await stream_into(port)
    error_of(messages, ws, ErrorCode.BACKEND_UNAVAILABLE)
    error = messages[-1]
    assert error["retryable"] is True and ERRORS[ErrorCode.BACKEND_UNAVAILABLE].retryable
    assert ws.close_code == 4007
    assert error["message"] == GENERIC
    for leak in ("ipv4:", "127.0.0.1", str(port), "UNAVAILABLE", "Connection refused", "gRPC"):
        assert leak not in error["message"], error
    # The detail is in the server's log, with the session it belongs to.
    logged = [
        r
        for r in caplog.records
        if getattr(r, "session_id", None) == error["session_id"]
        and "backend failed" in r.getMessage()
    ]
    assert logged and str(port) in logged[0].getMessage(), [r.getMessage() for r in logged]
