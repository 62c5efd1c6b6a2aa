"""Gateway security against real peers on loopback: TLS verified against a test CA, API
keys, signed browser tokens (issue, use, tamper, expire), the Origin allow-list, and no
credential in any log line. None of these need Riva to answer: they end at or right after
``session.begin``, so the gateway points at a closed port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from asr.contract import ErrorCode
from asr_server.tokens import TokenError, TokenProblem, issue_token, verify_token

from .conftest import scaled
from .helpers import (
    API_KEY,
    SECRET,
    closed_port,
    error_of,
    first_message,
    gateway,
    get_token,
    http,
    receive_all,
    refused,
)
from .tls import CertificateAuthority

# --- TLS -----------------------------------------------------------------------------


async def test_wss_verified_against_the_test_ca(tmp_path: Path) -> None:
    authority = CertificateAuthority(tmp_path)
    ca, leaf = authority.pem, authority.leaf("gateway", server=True)
    other_ca = CertificateAuthority(tmp_path, "someone else").pem
    async with gateway(f"127.0.0.1:{closed_port()}", cert=(leaf.cert, leaf.key)) as gw:
        assert gw.url.startswith("wss://")
        trusted = ssl.create_default_context(cafile=ca.cert)
        assert (await first_message(gw.url, ssl=trusted))["type"] == "session.begin"
        status, _, _ = await asyncio.to_thread(http, gw.base_url + "/healthz", None, trusted)
        assert status == 200
        # A client trusting another CA refuses the server's certificate.
        untrusted = ssl.create_default_context(cafile=other_ca.cert)
        with pytest.raises(ssl.SSLCertVerificationError):
            await first_message(gw.url, ssl=untrusted)
        # Plain WS to the TLS port does not get a session.
        with pytest.raises(Exception):  # noqa: B017 (any handshake failure will do)
            await first_message(gw.url.replace("wss://", "ws://"), open_timeout=scaled(5))


# --- API keys and tokens -------------------------------------------------------------


async def test_api_key_header_and_query() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}", api_keys=(API_KEY,)) as gw:
        headers = {"Authorization": f"Bearer {API_KEY}"}
        assert (await first_message(gw.url, additional_headers=headers))["type"] == (
            "session.begin"
        )
        assert (await first_message(f"{gw.url}?api_key={API_KEY}"))["type"] == "session.begin"
        for wrong in (None, {"Authorization": "Bearer nope"}):
            assert await refused(gw.url, ErrorCode.UNAUTHORIZED, additional_headers=wrong) == (
                "missing or invalid API key"
            )


async def test_token_issue_use_tamper_expire() -> None:
    async with gateway(
        f"127.0.0.1:{closed_port()}",
        api_keys=(API_KEY,),
        token_secret=SECRET,
        token_ttl_seconds=120,
    ) as gw:
        # Issuing needs the API key in the Authorization header.
        for key in (None, "wrong"):
            status, headers, body = await get_token(gw.base_url, key)
            assert status == 401 and "error" in body
            assert headers["WWW-Authenticate"].startswith("Bearer")
        status, _, _ = await asyncio.to_thread(http, f"{gw.base_url}/v1/tokens?api_key={API_KEY}")
        assert status == 401  # never from the URL
        before = time.time()
        status, headers, body = await get_token(gw.base_url, API_KEY)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert body["expires_in"] == 120
        assert before + 119 <= body["expires_at"] <= time.time() + 121
        token = body["token"]
        assert API_KEY not in token

        begin = await first_message(f"{gw.url}?token={token}&sample_rate=48000")
        assert begin["type"] == "session.begin"
        assert begin["config"]["sample_rate"] == 48_000  # the token is not a config field

        version, payload, signature = token.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        claims["exp"] += 3600  # extend it without the key
        forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
        expired, _ = issue_token(SECRET.encode(), api_key=API_KEY, now=time.time() - 3600, ttl=300)
        other_secret, _ = issue_token(
            b"another-secret-another-secret-00", api_key=API_KEY, now=time.time(), ttl=300
        )
        cases = {
            f"{version}.{payload}.{flipped}": "token signature is invalid",
            f"{version}.{forged_payload}.{signature}": "token signature is invalid",
            other_secret: "token signature is invalid",
            expired: "token has expired",
            "not-a-token": "token is malformed",
            "v1." + "A" * 5000 + ".x": "token is malformed",
        }
        for bad, reason in cases.items():
            async with connect(f"{gw.url}?token={bad}") as ws:
                messages = await receive_all(ws)
            error_of(messages, ws, ErrorCode.UNAUTHORIZED)
            assert messages[-1]["message"] == reason, bad
            assert ws.close_code == 4001


async def test_tokens_need_api_keys_configured() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        status, _, body = await get_token(gw.base_url, "anything")
    assert status == 404 and "ASR_SERVER_API_KEYS" in body["error"]


def test_token_functions() -> None:
    secret = b"k" * 32
    token, claims = issue_token(secret, api_key="key", now=1000.0, ttl=300)
    assert verify_token(secret, token, now=1299.0) == claims
    assert claims.expires_at == 1300 and len(claims.key_id) == 8
    with pytest.raises(TokenError) as info:
        verify_token(secret, token, now=1300.0)
    assert info.value.problem is TokenProblem.EXPIRED
    for bad in ("", ".", "v1..", "v2.a.b", "v1.a.b.c", "v1.é.x"):
        with pytest.raises(TokenError):
            verify_token(secret, bad, now=1000.0)


# --- Origin --------------------------------------------------------------------------


async def test_origin_allow_list() -> None:
    good = "https://app.example.com"
    async with gateway(f"127.0.0.1:{closed_port()}", allowed_origins=(good,)) as gw:
        with pytest.raises(InvalidStatus) as info:
            await first_message(gw.url, origin="https://evil.example.net")
        assert info.value.response.status_code == 403
        assert (await first_message(gw.url, origin=good))["type"] == "session.begin"
        # Servers and apps send no Origin and are let through (API keys guard them).
        assert (await first_message(gw.url))["type"] == "session.begin"


# --- no secrets in logs --------------------------------------------------------------


async def test_no_credentials_in_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs request lines and headers at DEBUG
    async with gateway(
        f"127.0.0.1:{closed_port()}", api_keys=(API_KEY,), token_secret=SECRET
    ) as gw:
        _, _, body = await get_token(gw.base_url, API_KEY)
        token = body["token"]
        await first_message(f"{gw.url}?api_key={API_KEY}")
        await first_message(gw.url, additional_headers={"Authorization": f"Bearer {API_KEY}"})
        await first_message(f"{gw.url}?token={token}")
        async with connect(f"{gw.url}?token={token}x") as ws:  # refused: logged too
            await receive_all(ws)
    # The server's records (the test's own websockets client logs its requests as sent).
    server = [r for r in caplog.records if r.name.startswith("asr")]
    text = "\n".join(f"{r.getMessage()} {json.dumps(vars(r), default=str)}" for r in server)
    assert "GET /v1/audio/transcriptions/stream" in text  # the request lines were logged
    assert "api_key=***" in text and "token=***" in text and "Authorization: ***" in text
    assert "authenticated by token" in text
    for secret in (API_KEY, token, token.split(".")[2], SECRET):
        assert secret not in text
