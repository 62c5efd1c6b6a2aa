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
import re
import signal

import pytest

from asr.logs import escape_controls, redact

from .conftest import scaled
from .helpers import SERVE_API_KEY, SERVE_TOKEN_SECRET, exchange, serve, upgrade

STREAM = "/v1/audio/transcriptions/stream"


@pytest.mark.parametrize("level", ["INFO", "DEBUG"])
async def test_secrets_are_redacted_however_sent(level: str) -> None:
    proc, port = await serve(level)
    try:
        requests = [
            upgrade(f"{STREAM}?api_key={SERVE_API_KEY}", version="1.0"),
            upgrade(STREAM, f"Authorization: Bearer {SERVE_API_KEY}\x01"),
            upgrade(f"{STREAM}?api%5Fkey={SERVE_API_KEY}"),
            upgrade(f"{STREAM}?to%6Ben={SERVE_API_KEY}.{SERVE_API_KEY}"),
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
    assert SERVE_API_KEY not in log, log
    assert SERVE_TOKEN_SECRET not in log
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
