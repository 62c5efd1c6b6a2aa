"""Bad input over a real WebSocket: each gets a typed error and its close code, or (floods,
empty frames) is absorbed; the server keeps serving afterwards.

Inputs that fail before any audio is forwarded need no Riva; the rest use the embedded
server.
"""

from __future__ import annotations

import asyncio
import json
import struct

import pytest
from websockets.asyncio.client import connect

from asr.audio import load_pcm16
from asr.contract import ErrorCode
from asr_server.limits import Limits

from .conftest import TIMEOUT_FACTOR, ServerThread
from .helpers import JFK, closed_port, error_of, gateway, receive_all, send_audio

NOWHERE = f"127.0.0.1:{closed_port()}"


@pytest.mark.parametrize(
    ("query", "frames", "code"),
    [
        ("", ['{"type": "config"'], ErrorCode.INVALID_JSON),  # truncated
        ("", [""], ErrorCode.INVALID_JSON),
        ("", ["[1, 2]"], ErrorCode.INVALID_JSON),
        ("", ["[" * 100_000], ErrorCode.INVALID_JSON),  # nesting deeper than the parser goes
        ("", ['{"type": 5}'], ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ("", ['{"typ": "end"}'], ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ("", ['{"type": "audio", "data": "AAAA"}'], ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ("", ['{"type": "config", "sample_rate": 4000}'], ErrorCode.INVALID_CONFIG),
        ("", ['{"type": "config", "sample_rate": "fast"}'], ErrorCode.INVALID_CONFIG),
        ("", ['{"type": "config", "sample_rate": 1e12}'], ErrorCode.INVALID_CONFIG),
        ("", ['{"type": "config", "sample_rate": ' + "9" * 5000 + "}"], ErrorCode.INVALID_CONFIG),
        ("?sample_rate=" + "9" * 5000, [], ErrorCode.INVALID_CONFIG),
        # Nested past Python's recursion limit, in the query: typed, not a 1011 crash.
        ("?endpointing=" + "[" * 3900 + "]" * 3900, [], ErrorCode.INVALID_CONFIG),
        ("?sample_rate=0", [], ErrorCode.INVALID_CONFIG),
        ("?sample_rate=16000&sample_rate=8000", [], ErrorCode.INVALID_CONFIG),
        ("?encoding=float32", [b"\x00" * 6], ErrorCode.INVALID_AUDIO),  # not whole floats
        ("?encoding=float32", [struct.pack("<2f", 0.5, float("inf"))], ErrorCode.INVALID_AUDIO),
        ("?encoding=float32", [struct.pack("<2f", float("-inf"), 0)], ErrorCode.INVALID_AUDIO),
        ("?encoding=float32", [struct.pack("<f", float("nan"))], ErrorCode.INVALID_AUDIO),
        ("?sample_rate=48000", [b"\x00" * 4801], ErrorCode.INVALID_AUDIO),  # odd PCM16
        ("", ['{"type": "end"}' + " " * 300_000], ErrorCode.FRAME_TOO_LARGE),
        ("", [b"\x00" * 300_000], ErrorCode.FRAME_TOO_LARGE),
    ],
)
async def test_bad_frames(query: str, frames: list[str | bytes], code: ErrorCode) -> None:
    async with gateway(NOWHERE) as gw, connect(gw.url + query, max_size=None) as ws:
        for frame in frames:
            await ws.send(frame)
        messages = await receive_all(ws)
    error_of(messages, ws, code)


async def test_audio_before_required_config_then_server_still_serves() -> None:
    async with gateway(NOWHERE, require_config=True) as gw:
        async with connect(gw.url) as ws:
            await ws.send(b"\x00\x00" * 160)
            messages = await receive_all(ws)
        error_of(messages, ws, ErrorCode.CONFIG_REQUIRED)
        async with connect(gw.url) as ws:
            await ws.send(json.dumps({"type": "config", "sample_rate": 16_000}))
            await ws.send(json.dumps({"type": "end"}))
            messages = await receive_all(ws)
        assert [m["type"] for m in messages] == ["session.begin", "session.updated", "session.end"]


async def test_protocol_level_garbage() -> None:
    async with gateway(NOWHERE, limits=Limits(max_frame_bytes=4096)) as gw:
        # A text frame that is not UTF-8: the WebSocket layer closes with 1007.
        async with connect(gw.url) as ws:
            await ws.send(b"\xff\xfe{", text=True)
            await receive_all(ws)
        assert ws.close_code == 1007
        # Over 4x max_frame_bytes: the WebSocket layer closes with 1009 before reading it.
        async with connect(gw.url, max_size=None) as ws:
            await ws.send(b"\x00" * 20_000)
            await receive_all(ws)
        assert ws.close_code == 1009
        # A plain HTTP request with a bogus upgrade gets an HTTP error, not a crash.
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"GET /v1/audio/transcriptions/stream HTTP/1.1\r\nHost: x\r\n\r\n")
        status = await reader.readline()
        writer.close()
        assert status.startswith(b"HTTP/1.1 4"), status
        # A POST (websockets only parses GET): refused, server unaffected.
        reader, writer = await asyncio.open_connection("127.0.0.1", gw.port)
        writer.write(b"POST /v1/tokens HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n")
        await reader.read()
        writer.close()
        async with connect(gw.url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"


async def test_empty_frames_are_harmless(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        for _ in range(50):
            await ws.send(b"")
        await ws.send(json.dumps({"type": "finalize"}))
        await ws.send(json.dumps({"type": "end"}))
        messages = await receive_all(ws)
    assert messages[-1]["type"] == "session.end" and ws.close_code == 1000
    assert messages[-1]["audio_seconds"] == 0


async def test_flood_of_small_messages(riva_server: ServerThread) -> None:
    """Thousands of tiny frames as fast as possible: answered in order, then drained."""
    pcm = load_pcm16(JFK)[: 2 * 32_000]  # 2 s
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        receiver = asyncio.create_task(receive_all(ws))
        for _ in range(3000):
            await ws.send('{"type":"keepalive"}')
        for i in range(0, len(pcm), 20):  # 10-sample frames: 3200 of them
            await ws.send(pcm[i : i + 20])
        await ws.send(json.dumps({"type": "end"}))
        messages = await receiver
    assert messages[-1]["type"] == "session.end" and ws.close_code == 1000
    assert messages[-1]["audio_seconds"] == pytest.approx(2.0, abs=0.01)
    assert [m["seq"] for m in messages] == list(range(len(messages)))


async def test_flood_of_audio_too_fast_is_refused() -> None:
    """Audio far faster than real time (an upload, a replay attack) is refused."""
    async with gateway(NOWHERE, limits=Limits(burst_seconds=1)) as gw, connect(gw.url) as ws:
        loop = asyncio.get_running_loop()
        start = loop.time()
        receiver = asyncio.create_task(receive_all(ws))
        await send_audio(ws, b"\x00\x00" * 16_000 * 20, speed=1000.0, chunk_ms=20, then=())
        messages = await receiver
        await ws.wait_closed()
        elapsed = loop.time() - start
    error_of(messages, ws, ErrorCode.TOO_FAST)
    # The closing handshake completes although the client's frames were still queued
    # (the server drops them rather than waiting out close_timeout).
    assert elapsed < 2.0 * TIMEOUT_FACTOR
