"""The gateway's log stays readable: served HTTP responses are not logged as rejections,
and what browsers ask for by themselves (``/favicon.ico``) is served."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request

import pytest

from asr.settings import RivaSettings
from asr_server.app import GatewayServer
from asr_server.settings import ServerSettings

from .conftest import REPO


def status_of(url: str) -> int:
    with urllib.request.urlopen(url) as response:
        status: int = response.status
    return status


async def test_probes_do_not_log_rejections(caplog: pytest.LogCaptureFixture) -> None:
    settings = ServerSettings(host="127.0.0.1", port=0)
    async with GatewayServer(settings, RivaSettings(uri="127.0.0.1:9")) as server:
        with caplog.at_level(logging.INFO, logger="asr.server"):
            for path in ("/healthz", "/", "/metrics"):
                url = server.base_url + path
                status = await asyncio.to_thread(status_of, url)
                assert status == 200
            with pytest.raises(urllib.error.HTTPError):
                await asyncio.to_thread(urllib.request.urlopen, server.base_url + "/missing")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("rejected (200" in m for m in messages), messages
    assert any("rejected (404" in m for m in messages), messages


def get(url: str) -> tuple[int, str, bytes]:
    with urllib.request.urlopen(url) as response:
        return response.status, response.headers["Content-Type"], response.read()


@pytest.mark.parametrize("static", [True, False])
async def test_favicon_is_served_not_rejected(
    caplog: pytest.LogCaptureFixture, static: bool
) -> None:
    settings = ServerSettings(
        host="127.0.0.1", port=0, static_dir=REPO / "static" if static else None
    )
    async with GatewayServer(settings, RivaSettings(uri="127.0.0.1:9")) as server:
        with caplog.at_level(logging.INFO, logger="asr.server"):
            status, kind, body = await asyncio.to_thread(get, server.base_url + "/favicon.ico")
            if static:
                # The icon the page links to, under the name browsers try on their own.
                page = await asyncio.to_thread(get, server.base_url + "/")
                assert b'rel="icon" href="favicon.svg"' in page[2]
                svg = await asyncio.to_thread(get, server.base_url + "/favicon.svg")
                assert (status, kind, body) == svg
                assert status == 200 and kind == "image/svg+xml" and body.startswith(b"<svg")
            else:
                assert (status, body) == (204, b"")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("rejected" in m for m in messages), messages
