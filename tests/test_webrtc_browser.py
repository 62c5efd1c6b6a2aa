"""The demo page's WebRTC transport in real headless Chromium: the fake microphone (JFK
framed by silence) as an Opus track to the gateway and the embedded Riva server, the
finals shown as over the WebSocket (tests/test_demo_page.py's approach).

Everything stays on loopback: the gateway gathers host candidates on 127.0.0.1 only,
Chromium is allowed loopback candidates (``--allow-loopback-in-peer-connection``), and
the offer is posted with its other host candidates removed, so no connectivity check is
sent to another address of this machine.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from asr.wer import word_error_rate
from asr_server.settings import WebRtcSettings

from .browser_support import (
    JFK_TEXT,
    chromium_page,
    padded_speech,
    require_browser,
    save_screenshot,
    stop_after_jfk,
    wait_for,
)
from .conftest import REPO, ServerThread, scaled
from .helpers import gateway


@asynccontextmanager
async def webrtc_page(fake_audio: Path) -> AsyncIterator[tuple[Any, list[str], list[str]]]:
    """A page of headless Chromium whose WebRTC offers keep only loopback candidates;
    also the offers' dropped candidate lines."""
    dropped: list[str] = []

    async def loopback_only(route: Any) -> None:
        offer = json.loads(route.request.post_data)
        lines = offer["sdp"].split("\r\n")
        kept = []
        for line in lines:
            if line.startswith("a=candidate:") and " 127.0.0.1 " not in line:
                dropped.append(line)
            else:
                kept.append(line)
        offer["sdp"] = "\r\n".join(kept)
        await route.continue_(post_data=json.dumps(offer))

    async with chromium_page(
        f"--use-file-for-fake-audio-capture={fake_audio}", "--allow-loopback-in-peer-connection"
    ) as (page, console):
        await page.route("**/v1/webrtc/offer*", loopback_only)
        yield page, console, dropped


async def test_microphone_over_webrtc_shows_the_finals(
    riva_server: ServerThread, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_browser()
    webrtc = WebRtcSettings(host_addresses=("127.0.0.1",), connect_timeout=scaled(10))
    async with (
        gateway(riva_server.uri, static_dir=REPO / "static", webrtc=webrtc) as gw,
        webrtc_page(padded_speech(tmp_path)) as (page, console, dropped),
    ):
        try:
            # localhost is a secure context: getUserMedia works over plain HTTP.
            await page.goto(gw.base_url.replace("127.0.0.1", "localhost") + "/")
            await page.select_option("#transport", "webrtc")
            await page.click("#start")
            state = await wait_for(
                page,
                lambda s: s["finals"] and word_error_rate([JFK_TEXT], [s["finals"]]) <= 0.2,
                scaled(60),
                "the finals of the first pass over WebRTC",
            )
            assert gw.active_sessions == 1
            state = await stop_after_jfk(page, max_wer=0.2)
            assert "ask what you can do for your country" in state["shown"].lower()
            # The page asked for the browser's echo cancellation and noise suppression.
            settings = await page.evaluate(
                """async () => {
                    const s = await navigator.mediaDevices.getUserMedia({audio: {
                        echoCancellation: true, noiseSuppression: true}});
                    const t = s.getAudioTracks()[0].getSettings(); s.getTracks()[0].stop();
                    return {ec: t.echoCancellation, ns: t.noiseSuppression};
                }"""
            )
            assert settings == {"ec": True, "ns": True}, settings
            latencies = await page.evaluate("() => window.asrDemo.latencies")
            assert latencies and all(0.05 < entry["final"] < scaled(10) for entry in latencies)
            # The session's metrics are WebRTC's, and the peer is gone.
            registry = gw.metrics.registry
            started = registry.get_sample_value(
                "asr_gateway_sessions_started_total", {"interface": "webrtc"}
            )
            assert started == 1
            deadline = time.monotonic() + scaled(10)
            while registry.get_sample_value("asr_gateway_webrtc_peers") != 0:
                assert time.monotonic() < deadline, "the peer connection was not closed"
                await asyncio.sleep(0.1)
            assert gw.active_sessions == 0
            assert not [line for line in console if "pageerror" in line], console
        except BaseException:
            await save_screenshot(page, request.node.name, console + dropped)
            raise
