"""Connections NVIDIA's realtime API refuses on a real gateway, with an ``error`` event and
a close code: an unknown intent, a bad or missing token, a disallowed origin, no room."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from riva.client.realtime import RealtimeClientASR, _connect_websocket
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr_server.limits import Limits
from asr_server.tokens import issue_token

from .conftest import ServerThread
from .helpers import API_KEY, SECRET, gateway, get_token
from .realtime_support import (
    events_until_close,
    next_event,
    realtime_url,
    refused_with,
    script_args,
    started,
)


async def test_unknown_intent_is_refused(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        for query in ("?intent=synthesis", "", "?intent=transcription&intent=synthesis"):
            async with connect(realtime_url(gw, query)) as ws:
                events = await events_until_close(ws)
            message = refused_with(events, ws, "invalid_config", 4002)
            assert "serves ?intent=transcription only" in message
        # NVIDIA's client: the first event is not conversation.created; its update then
        # meets the close, and connect() raises with the close code and reason.
        args = script_args("--mic", "--server", f"127.0.0.1:{gw.port}")
        args.query_params = "intent=synthesis"
        with pytest.raises(ConnectionClosed, match="4002.*invalid_config"):
            await asyncio.to_thread(asyncio.run, RealtimeClientASR(args).connect())
        assert started(gw) == 0


async def test_bad_or_missing_token_is_refused(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        url = realtime_url(gw)
        expired, _ = issue_token(SECRET.encode(), api_key=API_KEY, now=time.time() - 600, ttl=60)
        for subprotocols, problem in [
            (None, "missing or invalid API key"),
            (["realtime"], "missing or invalid API key"),
            (["realtime", "realtime-token.v1.bogus.sig"], "token signature is invalid"),
            (["realtime", f"realtime-token.{expired}"], "token has expired"),
        ]:
            async with connect(url, subprotocols=subprotocols) as ws:  # type: ignore[arg-type]
                events = await events_until_close(ws)
            assert refused_with(events, ws, "unauthorized", 4001) == problem
            if subprotocols:
                assert ws.subprotocol == "realtime"  # never the secret
        # What NVIDIA's client sees with a bad secret: connect() raises on the close.
        args = script_args("--mic", "--server", f"127.0.0.1:{gw.port}")

        async def bad_secret() -> None:
            client = RealtimeClientASR(args)
            client.session_config = {}
            client.websocket = await _connect_websocket(args, "v1.bogus.sig")
            try:
                await client._initialize_session()
            finally:
                await client.disconnect()

        with pytest.raises(ConnectionClosed, match="4001.*unauthorized"):
            await asyncio.to_thread(asyncio.run, bad_secret())
        # The own contract's credentials work here too: a token, a key in the header.
        _, _, body = await get_token(gw.base_url, API_KEY)
        async with connect(url + f"&token={body['token']}") as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
        headers = {"Authorization": f"Bearer {API_KEY}"}
        async with connect(url, additional_headers=headers) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
        assert started(gw) == 2


async def test_disallowed_origin_is_refused_before_the_handshake(
    riva_server: ServerThread,
) -> None:
    origins = ("https://app.example",)
    async with gateway(riva_server.uri, allowed_origins=origins) as gw:
        with pytest.raises(Exception, match="HTTP 403"):
            async with connect(realtime_url(gw), origin="https://evil.example"):  # type: ignore[arg-type]
                pass
        async with connect(realtime_url(gw), origin="https://app.example") as ws:  # type: ignore[arg-type]
            assert (await next_event(ws))["type"] == "conversation.created"


async def test_at_capacity_is_refused_and_the_slot_comes_back(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, limits=Limits(max_sessions=1)) as gw:
        async with connect(realtime_url(gw)) as first:
            assert (await next_event(first))["type"] == "conversation.created"
            async with connect(realtime_url(gw)) as second:
                events = await events_until_close(second)
            refused_with(events, second, "too_many_sessions", 4006)
            assert events[0]["error"]["retryable"] is True
            # The own contract's sessions count against the same limit.
            async with connect(gw.url) as own:
                assert json.loads(await own.recv())["code"] == "too_many_sessions"
        async with connect(realtime_url(gw)) as third:
            assert (await next_event(third))["type"] == "conversation.created"
        assert started(gw) == 2
