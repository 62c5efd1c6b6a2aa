"""The admission queue (issue 12): past ``max_sessions`` a session waits for a place,
first come first served, instead of being refused at once.

The queue's state is tested without I/O (clock passed in); the behaviour with real
``websockets`` clients and the official OpenAI SDK against a real gateway in front of the
embedded Riva server: ``session.queued`` then ``session.begin`` and a transcript, refusal
over the queue's size, after its timeout and at shutdown, a place freed by a client that
leaves, and the REST route waiting silently.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import ClientConnection, connect

from asr.audio import load_pcm16
from asr.contract import ErrorCode, server_message_adapter
from asr_server.admission import Turn, WaitQueue
from asr_server.app import GatewayServer
from asr_server.limits import Limits
from asr_server.protocol import Session

from .conftest import ServerThread, scaled
from .helpers import (
    API_KEY,
    JFK,
    error_of,
    finals_text,
    gateway,
    receive_all,
    receive_one,
    send_audio,
    sent,
    until,
)
from .rest_support import JFK_WORDS, rest_gateway, sdk, wer

# --- the queue's state, no I/O ------------------------------------------------------------


def test_the_queue_is_first_come_first_served_with_a_deadline() -> None:
    queue = WaitQueue(size=2, timeout=30.0)
    first, second = queue.join(0.0), queue.join(1.0)
    assert first is not None and second is not None
    assert queue.join(2.0) is None  # full
    assert [queue.position(first), queue.position(second)] == [1, 2]
    # A free place goes to the head only, never to one behind it.
    assert queue.turn(second, free=True, now=5.0) is Turn.WAITING
    assert queue.turn(first, free=False, now=5.0) is Turn.WAITING
    assert queue.turn(first, free=True, now=5.0) is Turn.ADMITTED
    queue.leave(first)
    assert queue.position(second) == 1 and queue.position(first) == 0
    assert queue.turn(second, free=False, now=30.9) is Turn.WAITING
    assert queue.turn(second, free=False, now=31.0) is Turn.TIMED_OUT
    queue.leave(second)
    assert len(queue) == 0 and queue.join(40.0) is not None
    assert WaitQueue(size=0, timeout=30.0).join(0.0) is None  # off


def test_queued_comes_before_begin_in_one_sequence() -> None:
    session = Session(session_id="s", limits=Limits(idle_timeout_seconds=5), now=0.0)
    messages = sent(session.queued(2, 30.0)) + sent(session.queued(1, 20.0))
    messages += sent(session.open(now=100.0))  # admitted 100 s later
    assert [(m.type, m.seq) for m in messages] == [  # type: ignore[attr-defined]
        ("session.queued", 0),
        ("session.queued", 1),
        ("session.begin", 2),
    ]
    assert session.deadline() == 105.0  # the idle timeout counts from the admission


BEARER = {"Authorization": f"Bearer {API_KEY}"}

# --- the gateway --------------------------------------------------------------------------


def queue_samples(gw: GatewayServer, name: str, **labels: str) -> float:
    """A sample of ``/metrics`` (0 when absent)."""
    for family in text_string_to_metric_families(gw.metrics.render().decode()):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


async def next_message(ws: ClientConnection) -> dict[str, Any]:
    return await receive_one(ws, server_message_adapter, timeout=30)


async def end(ws: ClientConnection) -> list[dict[str, Any]]:
    await ws.send(json.dumps({"type": "end"}))
    return await receive_all(ws)


def queued_at(message: dict[str, Any], position: int) -> None:
    assert message["type"] == "session.queued", message
    assert message["position"] == position
    assert 0 < message["timeout"] <= scaled(60)


async def test_a_queued_session_begins_when_a_place_frees(riva_server: ServerThread) -> None:
    limits = Limits(max_sessions=1, queue_size=2, queue_timeout_seconds=scaled(60))
    async with gateway(riva_server.uri, limits=limits) as gw:
        admission = gw.gateway.admission
        async with connect(gw.url) as first:
            assert (await next_message(first))["type"] == "session.begin"
            async with connect(gw.url) as second, connect(gw.url) as third:
                queued_at(await next_message(second), 1)
                queued_at(await next_message(third), 2)
                assert queue_samples(gw, "asr_gateway_queued_sessions") == 2

                # Over the queue's size: refused as without a queue.
                async with connect(gw.url) as over:
                    refused = await receive_all(over)
                assert [m["type"] for m in refused] == ["error"]
                error_of(refused, over, ErrorCode.TOO_MANY_SESSIONS)

                # A waiter that leaves frees its place: a newcomer takes it.
                await third.close()
                await until(lambda: len(admission.queue) == 1)
                async with connect(gw.url) as fourth:
                    queued_at(await next_message(fourth), 2)

                    # The first ends: the head begins, the one behind it moves up.
                    assert (await end(first))[-1]["type"] == "session.end"
                    begin = await next_message(second)
                    assert begin["type"] == "session.begin" and begin["seq"] == 1
                    queued_at(await next_message(fourth), 1)
                    sender = asyncio.create_task(send_audio(second, load_pcm16(JFK)))
                    messages = await receive_all(second)
                    await sender
                    assert (await next_message(fourth))["type"] == "session.begin"
                    assert (await end(fourth))[-1]["type"] == "session.end"
                assert messages[-1]["type"] == "session.end"
                assert wer(JFK_WORDS, finals_text(messages)) <= 0.15
        await until(lambda: len(admission.queue) == 0 and admission.active == 0)
        assert queue_samples(gw, "asr_gateway_queued_sessions") == 0
        wait = "asr_gateway_queue_wait_seconds_count"
        assert queue_samples(gw, wait, interface="websocket", outcome="admitted") == 2
        assert queue_samples(gw, wait, interface="websocket", outcome="left") == 1


async def test_a_waiter_times_out_with_too_many_sessions(riva_server: ServerThread) -> None:
    limits = Limits(max_sessions=1, queue_size=1, queue_timeout_seconds=0.5)
    async with gateway(riva_server.uri, limits=limits) as gw:
        async with connect(gw.url) as holder:
            assert (await next_message(holder))["type"] == "session.begin"
            async with connect(gw.url) as waiter:
                messages = await receive_all(waiter)
            assert [m["type"] for m in messages] == ["session.queued", "error"]
            assert 0 < messages[0]["timeout"] <= 0.5
            error_of(messages, waiter, ErrorCode.TOO_MANY_SESSIONS)
            assert "in the queue" in messages[1]["message"]
            assert (await end(holder))[-1]["type"] == "session.end"  # undisturbed
        wait = "asr_gateway_queue_wait_seconds_count"
        assert queue_samples(gw, wait, interface="websocket", outcome="timed_out") == 1


async def test_shutdown_empties_the_queue(riva_server: ServerThread) -> None:
    limits = Limits(max_sessions=1, queue_size=1, queue_timeout_seconds=scaled(60))
    async with gateway(riva_server.uri, limits=limits) as gw:
        async with connect(gw.url) as holder, connect(gw.url) as waiter:
            assert (await next_message(holder))["type"] == "session.begin"
            queued_at(await next_message(waiter), 1)
            drain = asyncio.create_task(gw.shutdown(scaled(10)))
            messages = await receive_all(waiter)
            assert [m["type"] for m in messages] == ["error"]
            error_of(messages, waiter, ErrorCode.TOO_MANY_SESSIONS)
            assert "shutting down" in messages[0]["message"]
            held = await receive_all(holder)
            assert [m["type"] for m in held] == ["warning", "session.end"]
            await drain
        assert holder.close_code == 1001


async def test_queue_off_refuses_at_once(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, limits=Limits(max_sessions=1)) as gw:
        async with connect(gw.url) as holder:
            assert (await next_message(holder))["type"] == "session.begin"
            async with connect(gw.url) as refused:
                messages = await receive_all(refused)
            assert [m["type"] for m in messages] == ["error"] and messages[0]["seq"] == 0
            error_of(messages, refused, ErrorCode.TOO_MANY_SESSIONS)
            await end(holder)


async def test_a_rest_request_waits_silently(riva_server: ServerThread) -> None:
    limits = {"max_sessions": 1, "queue_size": 1, "queue_timeout_seconds": scaled(60)}
    async with rest_gateway(riva_server.uri, limits=limits) as gw:
        admission = gw.gateway.admission
        async with connect(gw.url, additional_headers=BEARER) as holder:
            assert (await next_message(holder))["type"] == "session.begin"
            create = sdk(gw).audio.transcriptions.create
            request = asyncio.create_task(create(model="whisper-1", file=JFK.read_bytes()))
            await until(lambda: len(admission.queue) == 1)
            assert not request.done()
            await end(holder)
            result = await request
        assert wer(JFK_WORDS, result.text) <= 0.15


async def test_a_rest_request_past_the_queue_timeout_is_429(riva_server: ServerThread) -> None:
    limits = {"max_sessions": 1, "queue_size": 1, "queue_timeout_seconds": 0.3}
    async with rest_gateway(riva_server.uri, limits=limits) as gw:
        async with connect(gw.url, additional_headers=BEARER) as holder:
            assert (await next_message(holder))["type"] == "session.begin"
            with pytest.raises(openai.RateLimitError) as caught:
                await sdk(gw).audio.transcriptions.create(model="whisper-1", file=b"RIFF")
            assert caught.value.response.headers["Retry-After"] == "1"
            assert caught.value.code == "too_many_sessions"
            await end(holder)
