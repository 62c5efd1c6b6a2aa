"""The demo page in real headless Chromium, against the WebSocket server and embedded Riva.

Chromium is Debian's ``/usr/bin/chromium`` driven by Playwright (``executable_path``; no
browser download). The "microphone" is Chromium's fake capture device playing a WAV file.
That device loops its file, so the file is the speech framed by silence: the page's finals
for the first pass are checked as soon as they arrive, and Stop is pressed while the loop is
still in its trailing silence. A failing test leaves a screenshot in ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from asr.settings import RivaSettings
from asr.wer import word_error_rate
from asr_server.app import GatewayServer
from asr_server.certs import write_self_signed
from asr_server.settings import ServerSettings

from .browser_support import (
    CHROMIUM,
    JFK_TEXT,
    chromium_page,
    padded_speech,
    require_browser,
    save_screenshot,
    stop_after_jfk,
    wait_for,
)
from .conftest import REPO, ServerThread, scaled
from .helpers import JFK


@asynccontextmanager
async def browser_page(
    fake_audio: Path | None, *, https: bool
) -> AsyncIterator[tuple[Any, list[str]]]:
    flags = ["--autoplay-policy=no-user-gesture-required"]
    if fake_audio is not None:
        flags.append(f"--use-file-for-fake-audio-capture={fake_audio}")
    async with chromium_page(*flags, https=https) as opened:
        yield opened


@asynccontextmanager
async def gateway(riva_uri: str, certs: Path | None) -> AsyncIterator[GatewayServer]:
    cert, key = write_self_signed(certs) if certs else (None, None)
    settings = ServerSettings(
        host="127.0.0.1", port=0, cert=cert, key=key, static_dir=REPO / "static"
    )
    async with GatewayServer(settings, RivaSettings(uri=riva_uri)) as server:
        yield server


async def check_latency_display(page: Any, finals: int) -> None:
    """Each final has its two latencies, plausible, and the page shows them."""
    latencies = await page.evaluate("() => window.asrDemo.latencies")
    shown = await page.text_content("#latency")
    assert latencies and len(latencies) >= min(finals, 2), latencies
    for entry in latencies:
        # From the speech start to the first partial: at least the first 0.5 s of speech
        # and a decode; from the last word's audio to the final: the endpointer's pause
        # and a decode. On this machine about 1.5 s and 0.7 s; bounds for a loaded one.
        assert 0.2 < entry["firstPartial"] < scaled(10), latencies
        assert 0.1 < entry["final"] < scaled(10), latencies
    for i, entry in enumerate(latencies, 1):
        assert f"#{i}: first partial {entry['firstPartial']:.2f} s" in shown, shown
        assert f"final {entry['final']:.2f} s" in shown, shown


async def test_microphone_partials_greyed_and_finals_appended(
    riva_server: ServerThread, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_browser()
    async with (
        gateway(riva_server.uri, tmp_path / "certs") as gw,
        browser_page(padded_speech(tmp_path), https=True) as (page, console),
    ):
        try:
            url = gw.base_url.replace("127.0.0.1", "localhost")
            assert url.startswith("https://")
            await page.goto(url + "/")
            await page.click("#start")
            # The first pass of the looping file: its finals arrive during the tail silence.
            state = await wait_for(
                page,
                lambda s: s["finals"] and word_error_rate([JFK_TEXT], [s["finals"]]) <= 0.15,
                scaled(60),
                "the finals of the first pass",
            )
            state = await stop_after_jfk(page, max_wer=0.15)
            grey = await page.eval_on_selector("#partial", "e => getComputedStyle(e).color")
            black = await page.eval_on_selector("#finals", "e => getComputedStyle(e).color")
            assert grey == "rgb(158, 158, 158)" and grey != black
            assert "thank you" not in state["shown"].lower()  # Whisper's filler for silence
            await check_latency_display(page, finals=len(state["finals"].split(". ")))
            # The page has its icon: no failed request (favicon.ico used to be a 404).
            assert not [line for line in console if "404" in line], console
        except BaseException:
            await save_screenshot(page, request.node.name, console)
            raise


async def test_file_picker_streams_a_wav_in_real_time(
    riva_server: ServerThread, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_browser()
    async with (
        gateway(riva_server.uri, None) as gw,
        browser_page(None, https=False) as (page, console),
    ):
        try:
            await page.goto(gw.base_url + "/")
            started = time.monotonic()
            await page.set_input_files("#file", str(JFK))
            await wait_for(page, lambda s: s["state"] == "streaming", scaled(10), "streaming")
            state = await wait_for(
                page, lambda s: s["state"] in ("closed", "error"), scaled(60), "the end"
            )
            elapsed = time.monotonic() - started
            assert state["state"] == "closed" and state["closeCode"] == 1000, state
            assert word_error_rate([JFK_TEXT], [state["shown"]]) <= 0.1, state["shown"]
            assert elapsed >= 10.5, f"11 s of audio streamed in {elapsed:.1f} s: not real time"
            assert "11.0 s of audio" in await page.text_content("#meta")
        except BaseException:
            await save_screenshot(page, request.node.name, console)
            raise


async def test_backend_down_is_explained_in_words(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    require_browser()
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with (
        gateway(f"127.0.0.1:{port}", None) as gw,
        browser_page(padded_speech(tmp_path), https=False) as (page, console),
    ):
        try:
            await page.goto(gw.base_url + "/")
            await page.click("#start")
            state = await wait_for(page, lambda s: s["state"] == "error", scaled(20), "error")
            assert state["closeCode"] == 4007
            assert "not reachable" in state["error"]
            # The end user sees words, never the backend's address or gRPC detail.
            assert "127.0.0.1" not in state["error"] and "ipv4" not in state["error"]
            assert "(" not in state["error"]  # the server's generic sentence is not repeated
            assert await page.is_enabled("#start")
        except BaseException:
            await save_screenshot(page, request.node.name, console)
            raise


def test_skip_rule_is_not_silent_in_ci() -> None:
    """In CI a missing browser must fail the suite, never skip it."""
    if os.environ.get("CI") == "true":
        assert CHROMIUM.exists() and shutil.which("chromium") is not None
