"""Sessions past what Riva can take are refused at the door, not failed after they began.

An embedded server with one stream stands in for a full NIM. Learned: the first session
past the edge finds it (RESOURCE_EXHAUSTED: ``too_many_sessions`` after ``session.begin``),
and from then on new sessions are refused before ``session.begin``. Configured: none ever
begins past the edge. The session holding the stream is never disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr.audio import PCM16_BYTES_PER_SECOND, load_pcm16
from asr.contract import ErrorCode
from asr_server.capacity import BackendCapacity
from asr_server.limits import Limits

from .conftest import ServerThread
from .helpers import JFK, error_of, gateway, receive_all, send_audio

FAST_FAILURE = {"retry": {"attempts": 1}}  # a refused stream is not retried for seconds


def test_learned_capacity_and_its_probe() -> None:
    capacity = BackendCapacity(probe_seconds=30)
    assert capacity.limit(0.0) is None and capacity.admits(100, 0.0)
    capacity.exhausted(open_streams=3, now=10.0)
    assert capacity.limit(10.0) == 2
    assert not capacity.admits(2, 20.0) and capacity.admits(1, 20.0)
    assert capacity.limit(40.0) == 3  # one more after probe_seconds without a refusal
    capacity.exhausted(open_streams=3, now=41.0)
    assert capacity.limit(41.0) == 2
    assert BackendCapacity(5).limit(0.0) == 5


@pytest.fixture
def one_stream() -> Iterator[ServerThread]:
    server = ServerThread(max_streams=1)
    try:
        yield server
    finally:
        server.stop()


async def first_messages(url: str) -> tuple[list[dict[str, object]], object]:
    async with connect(url) as ws:
        # A little audio: the session asks for a stream. A session refused at the door is
        # closed right after its error, which can be before this audio is sent.
        with contextlib.suppress(ConnectionClosed):
            await ws.send(b"\x00\x00" * 3200)
        messages = await receive_all(ws)
    return messages, ws


@pytest.mark.parametrize("configured", [None, 1])
async def test_a_full_backend_refuses_at_the_door(
    one_stream: ServerThread, configured: int | None
) -> None:
    pcm = load_pcm16(JFK)[: 4 * PCM16_BYTES_PER_SECOND]
    limits = Limits(max_sessions=8, backend_streams=configured)
    async with gateway(one_stream.uri, limits=limits, riva=FAST_FAILURE) as gw:
        async with connect(gw.url) as holder:
            # The first session takes the backend's only stream and keeps it.
            talking = asyncio.create_task(send_audio(holder, pcm, speed=1.0, then=()))
            await asyncio.sleep(1.0)
            if configured is None:
                # Learning: the session that finds the edge began, then is refused.
                messages, ws = await first_messages(gw.url)
                assert messages[0]["type"] == "session.begin"
                error_of(messages, ws, ErrorCode.TOO_MANY_SESSIONS)  # type: ignore[arg-type]
            # Past the edge, a session is refused before it begins.
            messages, ws = await first_messages(gw.url)
            assert [m["type"] for m in messages] == ["error"], messages
            error_of(messages, ws, ErrorCode.TOO_MANY_SESSIONS)  # type: ignore[arg-type]
            assert "capacity of 1 streams" in str(messages[0]["message"])
            await talking
            await holder.send(json.dumps({"type": "end"}))
            held = await receive_all(holder)
        finals = [m["text"] for m in held if m["type"] == "transcript.final"]
        assert "americans" in " ".join(finals).lower()
        assert held[-1]["type"] == "session.end"
