"""Gateway-side resilience with real peers: a client that stops reading, SIGTERM to
``asr serve`` mid-utterance, and a Riva that accepts a stream but never answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosedError

from asr.audio import PCM16_BYTES_PER_SECOND, load_pcm16
from asr.contract import ErrorCode, server_message_adapter
from asr.wer import word_error_rate
from asr_server.app import STREAM_PATH
from asr_server.limits import Limits

from .conftest import ServerThread, scaled
from .helpers import (
    JFK,
    JFK_TEXT,
    check_order,
    error_of,
    finals_text,
    gateway,
    receive_all,
    send_audio,
    transcribe,
)
from .scripted import Script, start_scripted


async def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    async with asyncio.timeout(scaled(timeout)):
        # Polling a metric of the server under test; it has no event to wait on.
        while True:
            if condition():
                return
            await asyncio.sleep(0.05)


# --- a client that does not read -----------------------------------------------------


async def test_client_that_stops_reading_is_closed_and_others_unaffected(
    riva_server: ServerThread,
) -> None:
    limits = Limits(max_outbound_bytes=256 * 1024)
    async with gateway(riva_server.uri, limits=limits, close_timeout=5) as gw:
        good = asyncio.create_task(transcribe(gw.url, load_pcm16(JFK), speed=2.0))
        # max_queue=1: the client's websockets stops reading the socket after one message
        # that the application did not take, so the kernel buffers and then the server's
        # outbox fill up.
        async with connect(gw.url, max_queue=1) as slow:
            # Each config is answered with session.updated echoing ~100 KB of boosted words.
            big = json.dumps({"type": "config", "boosted_words": ["w" * 100] * 1000})
            for _ in range(80):
                await slow.send(big)
            # ...and it goes on streaming audio without reading.
            streaming = asyncio.create_task(
                send_audio(slow, load_pcm16(JFK)[: 3 * PCM16_BYTES_PER_SECOND], speed=1.0, then=())
            )

            def closed_slow() -> bool:
                sample = gw.metrics.registry.get_sample_value(
                    "asr_gateway_sessions_ended_total",
                    {"interface": "websocket", "close_code": "4012", "by": "server"},
                )
                return bool(sample)

            await wait_until(closed_slow, 30)
            # It reads again: everything queued, then the error and the close code.
            messages = await receive_all(slow)
            await streaming
        error_of(messages, slow, ErrorCode.CLIENT_TOO_SLOW)
        assert slow.close_code == 4012
        # The other session, meanwhile, ran to its end with the right transcript.
        good_messages, good_ws = await good
    check_order(good_messages)
    assert good_messages[-1]["type"] == "session.end" and good_ws.close_code == 1000
    assert word_error_rate([JFK_TEXT], [finals_text(good_messages)]) <= 0.1


# --- SIGTERM -------------------------------------------------------------------------


class Collector:
    """Reads every message of a connection, noting when one of a given kind arrives."""

    def __init__(self, ws: ClientConnection) -> None:
        self.messages: list[dict[str, Any]] = []
        self.warned = asyncio.Event()
        self.task = asyncio.create_task(self._run(ws))

    async def _run(self, ws: ClientConnection) -> None:
        with contextlib.suppress(ConnectionClosedError):
            async for frame in ws:
                assert isinstance(frame, str)
                server_message_adapter.validate_json(frame)
                message = json.loads(frame)
                self.messages.append(message)
                if message["type"] == "warning":
                    self.warned.set()


async def test_sigterm_drains_sessions_then_closes_1001(riva_server: ServerThread) -> None:
    env = os.environ | {
        "ASR_SERVER_SHUTDOWN_TIMEOUT": "30",
        "ASR_SERVER_LOG_FORMAT": "json",
        "ASR_SERVER_API_KEYS": "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "asr",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--server",
        riva_server.uri,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    try:
        async with asyncio.timeout(scaled(60)):
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
        found = re.search(r"on (http://\S+)", line)
        assert found, line
        url = "ws" + found.group(1).removeprefix("http") + STREAM_PATH
        pcm = load_pcm16(JFK)
        cut = int(4.0 * PCM16_BYTES_PER_SECOND)  # inside "ask not"
        async with connect(url) as ws:
            collector = Collector(ws)
            await send_audio(ws, pcm[:cut], speed=1.0, then=())
            proc.send_signal(signal.SIGTERM)
            # The client keeps talking; the server says it is going away and ignores it.
            talking = asyncio.create_task(
                send_audio(ws, pcm[cut : cut + 2 * PCM16_BYTES_PER_SECOND], speed=1.0, then=())
            )
            async with asyncio.timeout(scaled(10)):
                await collector.warned.wait()
            # No new sessions once the shutdown began.
            with pytest.raises(OSError):
                async with connect(url, open_timeout=scaled(5)):
                    pass
            await asyncio.wait_for(collector.task, scaled(40))
            await talking
        messages = collector.messages
        assert ws.close_code == 1001, (ws.close_code, messages[-3:])
        warnings = [m["code"] for m in messages if m["type"] == "warning"]
        assert warnings[0] == "server_shutting_down"
        check_order(messages)
        end = messages[-1]
        assert end["type"] == "session.end"
        assert end["audio_seconds"] <= 4.0 + 0.5  # audio after the warning was ignored
        text = end["transcript"].lower()
        assert "fellow americans" in text and "ask" in text, text  # cut inside "not"
        assert end["transcript"] == finals_text(messages)
        async with asyncio.timeout(scaled(20)):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


# --- a stalled backend ---------------------------------------------------------------


@pytest.mark.parametrize("ending", [{"type": "finalize"}, {"type": "end"}])
async def test_stalled_riva_ends_in_a_typed_error(ending: dict[str, str]) -> None:
    """Riva accepts the stream and then never answers: bounded by final_timeout_seconds,
    not by the hour-long stream deadline."""
    script = Script(["hang"])
    server, port = await start_scripted(script)
    try:
        limits = Limits(final_timeout_seconds=1.0)
        async with gateway(f"127.0.0.1:{port}", limits=limits) as gw, connect(gw.url) as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, b"\x00\x00" * 16_000, speed=2.0, then=[ending])
            loop = asyncio.get_running_loop()
            start = loop.time()
            messages = await receiver
            elapsed = loop.time() - start
            # The gRPC stream is cancelled with the session, not left hanging.
            registry = gw.metrics.registry
            await wait_until(
                lambda: registry.get_sample_value("asr_gateway_active_streams") == 0, 5
            )
    finally:
        await server.stop(0)
    error_of(messages, ws, ErrorCode.BACKEND_UNAVAILABLE)
    assert "stalled" in messages[-1]["message"]
    assert 0.9 < elapsed < scaled(5)
    assert script.calls == 1
