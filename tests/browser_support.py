"""What the tests in real headless Chromium share: the browser (Debian's
``/usr/bin/chromium`` driven by Playwright, no browser download) with a fake microphone
playing a WAV file, the JFK clip framed by silence for it, and the demo page's state.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from asr.audio import read_audio
from asr.wer import word_error_rate

from .conftest import REPO, scaled
from .helpers import JFK, JFK_TEXT

__all__ = [
    "CHROMIUM",
    "JFK_TEXT",
    "chromium_page",
    "padded_speech",
    "page_state",
    "require_browser",
    "save_screenshot",
    "stop_after_jfk",
    "wait_for",
]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
LEAD_SILENCE, TAIL_SILENCE = 1.0, 6.0

_FLAGS = (
    "--no-sandbox",
    "--headless",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
)
"""Headless, quiet, and a fake camera and microphone granted without a prompt."""


def require_browser() -> Any:
    """Playwright's ``async_playwright``; skips the test (fails it in CI) without Chromium
    or Playwright."""
    problem = None
    if not CHROMIUM.exists():
        problem = f"{CHROMIUM} is missing (apt-get install chromium)"
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        problem = problem or "playwright is not installed"
    if problem:
        if os.environ.get("CI") == "true":
            pytest.fail(f"demo page test cannot run in CI: {problem}")
        pytest.skip(problem)
    return async_playwright


def padded_speech(folder: Path) -> Path:
    """JFK framed by silence, as the fake microphone's looping file."""
    samples, rate = read_audio(JFK)
    lead = np.zeros(int(LEAD_SILENCE * rate), dtype=np.float32)
    tail = np.zeros(int(TAIL_SILENCE * rate), dtype=np.float32)
    path = folder / "jfk-padded.wav"
    sf.write(path, np.concatenate([lead, samples, tail]), rate, subtype="PCM_16")
    return path


@asynccontextmanager
async def chromium_page(*flags: str, https: bool = False) -> AsyncIterator[tuple[Any, list[str]]]:
    """A page of headless Chromium started with :data:`_FLAGS` and ``flags``, and the
    page's console lines as they come; ``https`` accepts the gateway's self-signed
    certificate."""
    async_playwright = require_browser()
    console: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=[*_FLAGS, *flags]
        )
        try:
            context = await browser.new_context(ignore_https_errors=https)
            page = await context.new_page()
            page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
            page.on("pageerror", lambda err: console.append(f"pageerror: {err}"))
            yield page, console
        finally:
            await browser.close()


async def save_screenshot(page: Any, name: str, console: list[str]) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console) + "\n")


async def page_state(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = await page.evaluate(
        """() => ({
            state: window.asrDemo.state,
            finals: window.asrDemo.finals.join(" "),
            shown: document.getElementById("finals").textContent,
            types: window.asrDemo.messages.map((m) => m.type),
            closeCode: window.asrDemo.closeCode,
            error: document.getElementById("error").hidden
                ? "" : document.getElementById("error").textContent,
            status: document.getElementById("status").textContent,
        })"""
    )
    return state


async def wait_for(page: Any, condition: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll the page's state until ``condition(state)`` holds."""
    deadline = time.monotonic() + timeout
    while True:
        state = await page_state(page)
        if condition(state):
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; page state: {state}")
        await asyncio.sleep(0.25)  # polling the page, not waiting for readiness


async def stop_after_jfk(page: Any, *, max_wer: float) -> dict[str, Any]:
    """Click Stop once the page has the JFK finals and check the end: closed 1000 without an
    error, the shown text the finals and within ``max_wer`` of the clip's, session.begin to
    session.end with a partial before the first final. The page's last state."""
    await page.click("#stop")
    state = await wait_for(page, lambda s: s["state"] in ("closed", "error"), scaled(30), "the end")
    assert state["state"] == "closed" and state["closeCode"] == 1000, state
    assert state["error"] == ""
    assert state["shown"] == state["finals"]
    assert word_error_rate([JFK_TEXT], [state["shown"]]) <= max_wer, state["shown"]
    types = state["types"]
    assert types[0] == "session.begin" and types[-1] == "session.end"
    assert types.index("transcript.partial") < types.index("transcript.final")
    return state
