"""A slow Riva is waited for; only a stalled one is failed.

The scripted Riva takes 3 s to deliver the final after ``end`` but answers every 0.3 s in
between, as a loaded server's progress responses do. With ``final_timeout_seconds`` at 1 s
the session still completes with its final; the hanging one (test_gateway_resilience) ends
in ``backend_unavailable`` after 1 s.
"""

from __future__ import annotations

import asyncio

from websockets.asyncio.client import connect

from asr_server.limits import Limits

from .helpers import gateway, receive_all, send_audio
from .scripted import Script, start_scripted


async def test_a_slow_backend_that_keeps_answering_is_waited_for() -> None:
    script = Script(["slow"])
    server, port = await start_scripted(script)
    try:
        limits = Limits(final_timeout_seconds=1.0)
        async with gateway(f"127.0.0.1:{port}", limits=limits) as gw, connect(gw.url) as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, b"\x00\x00" * 16_000, speed=2.0)  # then "end"
            start = asyncio.get_running_loop().time()
            messages = await receiver
            waited = asyncio.get_running_loop().time() - start
    finally:
        await server.stop(0)
    types = [m["type"] for m in messages]
    assert "error" not in types, messages
    finals = [m["text"] for m in messages if m["type"] == "transcript.final"]
    assert finals == ["bytes=32000"]
    assert messages[-1]["type"] == "session.end"
    assert waited > 2.5  # three times final_timeout_seconds, and still served
