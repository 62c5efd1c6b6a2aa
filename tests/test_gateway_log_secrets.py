"""Credentials never reach the gateway's log, however a client spells or mangles them.

``asr serve`` runs as its own process with API keys set; raw sockets send what a careless
or hostile client sends: an HTTP/1.0 request line with ``?api_key=``, an Authorization
value with a control character (websockets puts the value it cannot parse into the
exception it logs), and percent-encoded parameter names that still authenticate
(``api%5Fkey``, ``to%6Ben``). The log, at INFO and at DEBUG, holds none of the secrets and
no raw control bytes.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys

import pytest

from asr.logs import escape_controls, redact

from .conftest import scaled

API_KEY = "sk-live-4242-log-secret"
TOKEN_SECRET = "hmac-secret-for-the-log-test-0123456789"
STREAM = "/v1/audio/transcriptions/stream"


async def serve(level: str) -> tuple[asyncio.subprocess.Process, int]:
    env = os.environ | {
        "ASR_SERVER_API_KEYS": API_KEY,
        "ASR_SERVER_TOKEN_SECRET": TOKEN_SECRET,
        "ASR_SERVER_LOG_LEVEL": level,
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "asr", "serve", "--host", "127.0.0.1", "--port", "0"),
        *("--server", "127.0.0.1:9"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    async with asyncio.timeout(scaled(60)):
        line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
    found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
    assert found, line
    return proc, int(found.group(1))


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` raw; read the response head, or until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(10)) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def upgrade(target: str, *headers: str, version: str = "1.1") -> bytes:
    lines = [
        f"GET {target} HTTP/{version}",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_secrets_are_redacted_however_sent(level: str) -> None:
    proc, port = await serve(level)
    try:
        requests = [
            upgrade(f"{STREAM}?api_key={API_KEY}", version="1.0"),
            upgrade(STREAM, f"Authorization: Bearer {API_KEY}\x01"),
            upgrade(f"{STREAM}?api%5Fkey={API_KEY}"),
            upgrade(f"{STREAM}?to%6Ben={API_KEY}.{API_KEY}"),
        ]
        # Junk: a TLS ClientHello on the plaintext port, and binary noise; each is one line.
        junk = [b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\x1b[2J\r\n\r\n"] * 20
        junk += [bytes(range(256)) * 4 + b"\r\n\r\n"] * 20
        requests += junk
        for request in requests:
            await asyncio.to_thread(exchange, port, request)
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(scaled(30)):
            _, err = await proc.communicate()
    log = err.decode("utf-8", "replace")
    assert "opening handshake failed" in log or "rejected" in log, log  # the junk was logged
    assert API_KEY not in log, log
    assert TOKEN_SECRET not in log
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", log), "raw control bytes in the log"
    assert "Traceback" not in log
    junk_lines = [line for line in log.splitlines() if "opening handshake failed" in line]
    assert len(junk_lines) >= 40
    assert all(len(line) < 400 for line in junk_lines), max(junk_lines, key=len)


def test_redaction_rules() -> None:
    assert redact("GET /s?api_key=K&x=1 HTTP/1.0") == "GET /s?api_key=***&x=1 HTTP/1.0"
    assert redact("GET /s?api%5Fkey=K&to%6Ben=T") == "GET /s?api%5Fkey=***&to%6Ben=***"
    assert redact("?sample_rate=16000&token=abc") == "?sample_rate=16000&token=***"
    assert redact("Authorization: Bearer K") == "Authorization: ***"
    assert redact("[('authorization', 'Bearer K')]") == "[('authorization', '***')]"
    assert redact("invalid HTTP header value: Bearer K\x01") == "invalid HTTP header value: ***"
    assert redact("sent Bearer nvapi-123 upstream") == "sent Bearer *** upstream"
    assert redact("sample_rate=16000 language=en-US") == "sample_rate=16000 language=en-US"
    assert escape_controls("a\x01b\x1b[2K\nc\td") == "a\\x01b\\x1b[2K\nc\td"
