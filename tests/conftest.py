"""Shared test fixtures: the speech fixtures in ../shared and a real embedded Riva server."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import riva.client

from asr.embedded.server import EmbeddedServer
from asr.evaluation.corpus import Clip, load_corpus

REPO = Path(__file__).resolve().parents[1]
SPEECH = Path(os.environ.get("ASR_SPEECH_FIXTURES", REPO.parent / "shared" / "fixtures" / "speech"))

# One factor scales every timeout in the suite, so slow machines do not flake.
TIMEOUT_FACTOR = float(os.environ.get("ASR_TEST_TIMEOUT_FACTOR", "1"))


def scaled(seconds: float) -> float:
    """A timeout scaled by ``ASR_TEST_TIMEOUT_FACTOR``."""
    return seconds * TIMEOUT_FACTOR


def load_set(name: str) -> list[Clip]:
    """The clips of a shared speech set with their reference transcripts."""
    return load_corpus(SPEECH / name)


@pytest.fixture(scope="session")
def speech_dir() -> Path:
    if not SPEECH.is_dir():
        pytest.fail(f"speech fixtures not found at {SPEECH} (set ASR_SPEECH_FIXTURES)")
    return SPEECH


class ServerThread:
    """An embedded Riva-compatible server on its own event loop in a background thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._server = EmbeddedServer(host="127.0.0.1", port=0, **kwargs)
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.port: int = asyncio.run_coroutine_threadsafe(self._server.start(), self._loop).result(
            timeout=scaled(60)
        )

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"

    def call(self, fn: Callable[[EmbeddedServer], object]) -> None:
        """Run ``fn(server)`` on the server's loop and wait for it."""

        async def run() -> None:
            fn(self._server)

        asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=scaled(10))

    def decodes(self) -> int:
        """Decodes the server has run so far."""
        return self._server.decode_stats["ran"]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(0.5), self._loop).result(
            timeout=scaled(30)
        )
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=scaled(10))


@pytest.fixture(scope="session")
def riva_server() -> Iterator[ServerThread]:
    """The embedded Riva-compatible server with the real engine, on 127.0.0.1:<port 0>."""
    server = ServerThread()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def asr_service(riva_server: ServerThread) -> Iterator[riva.client.ASRService]:
    """NVIDIA's own ``riva.client.ASRService`` on the embedded server (one per module)."""
    auth = riva.client.Auth(uri=riva_server.uri)
    try:
        yield riva.client.ASRService(auth)
    finally:
        auth.channel.close()
