"""The gateway's HTTP surface on the ASGI app: ``POST /v1/tokens`` (``GET`` deprecated,
still served), 405 with ``Allow`` for other methods, 404 for unknown paths whatever the
method, ``/openapi.json`` describing every route, and the total connection bound, each
against a real gateway with real HTTP clients or raw sockets. No Riva is needed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import urllib.error
import urllib.request
from typing import Any

import pytest

from .conftest import scaled
from .helpers import API_KEY, SECRET, closed_port, exchange, gateway

NOWHERE = f"127.0.0.1:{closed_port()}"


def call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=scaled(10)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def test_post_tokens_and_the_deprecated_get(caplog: pytest.LogCaptureFixture) -> None:
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    async with gateway(NOWHERE, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        url = gw.base_url + "/v1/tokens"
        status, headers, body = await asyncio.to_thread(call, url, "POST", bearer)
        assert status == 200 and headers["Cache-Control"] == "no-store"
        assert set(json.loads(body)) == {"token", "expires_at", "expires_in"}
        assert "Deprecation" not in headers
        status, headers, _ = await asyncio.to_thread(call, url, "POST", None)
        assert status == 401 and headers["WWW-Authenticate"].startswith("Bearer")
        with caplog.at_level(logging.WARNING, logger="asr.server"):
            for _ in range(3):
                status, headers, body = await asyncio.to_thread(call, url, "GET", bearer)
                assert status == 200 and "token" in json.loads(body)
                assert headers["Deprecation"] == "true"
                assert 'rel="deprecation"' in headers["Link"]
    deprecations = [r for r in caplog.records if "GET /v1/tokens is deprecated" in r.message]
    assert len(deprecations) == 1  # logged once, not per request


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PUT", "/v1/tokens", "GET, POST"),
        ("DELETE", "/v1/tokens", "GET, POST"),
        ("POST", "/healthz", "GET"),
        ("POST", "/metrics", "GET"),
        ("POST", "/index.html", "GET, HEAD"),
    ],
)
async def test_other_methods_get_405_with_allow(
    method: str, path: str, allow: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with gateway(NOWHERE) as gw:
        status, headers, _ = await asyncio.to_thread(call, gw.base_url + path, method)
    assert (status, headers["Allow"]) == (405, allow)
    assert "Traceback" not in caplog.text


@pytest.mark.parametrize("static", [True, False])
async def test_unknown_paths_are_404_whatever_the_method(static: bool) -> None:
    settings: dict[str, Any] = {} if static else {"static_dir": None}
    async with gateway(NOWHERE, **settings) as gw:
        for method in ("GET", "POST", "PUT"):
            status, _, body = await asyncio.to_thread(call, gw.base_url + "/nope", method)
            assert (status, body) == (404, b"not found\n"), method


async def test_a_raw_post_is_answered_not_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """What ``curl -X POST /v1/tokens`` did to the websockets server's log."""
    async with gateway(NOWHERE, api_keys=(API_KEY,)) as gw:
        request = b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
        answer = await asyncio.to_thread(exchange, gw.port, request)
    assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert "Traceback" not in caplog.text


async def test_openapi_describes_every_http_route() -> None:
    async with gateway(NOWHERE) as gw:
        status, _, body = await asyncio.to_thread(call, gw.base_url + "/openapi.json")
    assert status == 200
    doc = json.loads(body)
    operations = {(path, method) for path, item in doc["paths"].items() for method in item}
    assert operations >= {
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
        ("/v1/tokens", "post"),
        ("/v1/tokens", "get"),
        ("/", "get"),
        ("/favicon.ico", "get"),
        ("/v1/audio/transcriptions/stream", "get"),
    }
    assert doc["paths"]["/v1/tokens"]["get"]["deprecated"] is True
    post = doc["paths"]["/v1/tokens"]["post"]["responses"]
    assert post["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/TokenBody")
    assert {"TokenBody", "ErrorBody", "HealthBody", "ReadyBody"} <= set(
        doc["components"]["schemas"]
    )


async def test_connections_past_the_total_are_dropped() -> None:
    async with gateway(NOWHERE, connections={"max_connections": 3}) as gw:
        held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
        try:
            await asyncio.sleep(0.2)  # accepted and counted by the server
            answer = await asyncio.to_thread(
                exchange, gw.port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            )
            assert answer == b""  # dropped at once, nothing answered
        finally:
            for sock in held:
                sock.close()
        await asyncio.sleep(0.2)
        status, _, _ = await asyncio.to_thread(call, gw.base_url + "/healthz")
        assert status == 200  # room again once they closed
