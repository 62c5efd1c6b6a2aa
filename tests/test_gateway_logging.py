"""The gateway's log stays readable: served HTTP responses are not logged as rejections."""

from __future__ import annotations

import asyncio
import logging
import urllib.error
import urllib.request

import pytest

from asr.settings import RivaSettings
from asr_server.app import GatewayServer
from asr_server.settings import ServerSettings


async def test_probes_do_not_log_rejections(caplog: pytest.LogCaptureFixture) -> None:
    settings = ServerSettings(host="127.0.0.1", port=0)
    async with GatewayServer(settings, RivaSettings(uri="127.0.0.1:9")) as server:
        with caplog.at_level(logging.INFO, logger="asr.server"):
            for path in ("/healthz", "/", "/metrics"):
                url = server.base_url + path
                status = await asyncio.to_thread(lambda u=url: urllib.request.urlopen(u).status)
                assert status == 200
            with pytest.raises(urllib.error.HTTPError):
                await asyncio.to_thread(urllib.request.urlopen, server.base_url + "/missing")
    messages = [r.getMessage() for r in caplog.records]
    assert not any("rejected (200" in m for m in messages), messages
    assert any("rejected (404" in m for m in messages), messages
