"""WebRTC ingest with a Python aiortc client: JFK over an Opus track to the gateway and the
embedded Riva server, all on loopback (host candidates on 127.0.0.1 on both sides).

The finals are the WebSocket's (same session protocol); bad offers are refused before a
peer exists, a peer that never connects is closed within the connect timeout and counted,
and a peer that vanishes mid-session (SIGKILL of a client process) is ended by the media
timeout. Each leaves no peer connection, session or asyncio task behind.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import numpy as np
from aiortc import RTCPeerConnection

from asr.audio import float32_to_pcm16, read_audio, resample
from asr.wer import normalize, word_error_rate
from asr_server.app import GatewayServer
from asr_server.limits import Limits
from asr_server.settings import WebRtcSettings
from asr_server.webrtc import OFFER_PATH
from asr_server.webrtc.client import PcmTrack, connect
from asr_server.webrtc.peer import host_addresses
from asr_server.webrtc.routes import ice_configuration

from .conftest import REPO, SPEECH, ServerThread, scaled
from .helpers import check_order, finals_text, gateway

JFK = SPEECH / "jfk" / "jfk.wav"
REFERENCE = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
PHRASE = "ask what you can do for your country"


def jfk_pcm(lead: float = 0.5, tail: float = 2.0) -> bytes:
    samples, rate = read_audio(JFK)
    samples = resample(samples, rate, 16_000)
    silence = [np.zeros(int(s * 16_000), np.float32) for s in (lead, tail)]
    return float32_to_pcm16(np.concatenate([silence[0], samples, silence[1]]))


def post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("content-type", content_type)
    return open_url(request)


def open_url(request: urllib.request.Request) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-case names) and body, an HTTP error status included."""
    try:
        with urllib.request.urlopen(request, timeout=scaled(10)) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def metric(server: GatewayServer, name: str, **labels: str) -> float:
    value = server.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


@asynccontextmanager
async def webrtc_gateway(riva_uri: str, **settings: Any) -> AsyncIterator[GatewayServer]:
    webrtc = WebRtcSettings(
        host_addresses=("127.0.0.1",),
        connect_timeout=settings.pop("connect_timeout", scaled(10)),
        media_timeout=settings.pop("media_timeout", scaled(5)),
    )
    async with gateway(riva_uri, static_dir=None, webrtc=webrtc, **settings) as server:
        yield server


async def settled(server: GatewayServer, baseline: int, timeout: float) -> None:
    """Wait until no peer or session is left and the tasks are back to ``baseline``."""
    deadline = time.monotonic() + timeout
    while True:
        peers = metric(server, "asr_gateway_webrtc_peers")
        tasks = len(asyncio.all_tasks()) - 1  # this test's own task
        if peers == 0 and server.active_sessions == 0 and tasks <= baseline:
            return
        if time.monotonic() > deadline:
            left = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            raise AssertionError(
                f"{peers} peers, {server.active_sessions} sessions, {tasks} tasks "
                f"(baseline {baseline}) left: {left}"
            )
        await asyncio.sleep(0.05)


async def test_jfk_over_webrtc_gives_the_websockets_finals(riva_server: ServerThread) -> None:
    async with webrtc_gateway(riva_server.uri) as server:
        baseline = len(asyncio.all_tasks()) - 1
        track = PcmTrack(jfk_pcm())
        query = {"interim_results": "true", "word_timestamps": "true"}
        messages: list[dict[str, Any]] = []
        async with asyncio.timeout(scaled(60)):
            async with await connect(server.base_url, track, query=query) as call:
                assert call.location.startswith("/v1/webrtc/sessions/")

                async def end_after_the_clip() -> None:
                    await track.done.wait()  # the clip and its trailing silence were sent
                    await call.send({"type": "end"})

                ender = asyncio.create_task(end_after_the_clip())
                async for message in call.messages():
                    messages.append(message)
                    if message["type"] in ("session.end", "error"):
                        break
                assert ender.done(), f"the session ended before the audio: {messages}"
        types = [m["type"] for m in messages]
        assert types[0] == "session.begin" and types[-1] == "session.end", types
        check_order(messages)
        assert messages[0]["session_id"] == call.location.rsplit("/", 1)[1]
        assert types.index("transcript.partial") < types.index("transcript.final")
        text = finals_text(messages)
        assert word_error_rate([REFERENCE], [text]) <= 0.2, text
        assert PHRASE in normalize(text), text
        end = messages[-1]
        assert end["transcript"] == text
        # 0.5 + 11 + 2 s of audio were played; frames sent before the connection was up
        # and after 'end' do not count.
        assert 12.0 <= end["audio_seconds"] <= 14.5, end
        await settled(server, baseline, scaled(10))
        assert metric(server, "asr_gateway_sessions_started_total", interface="webrtc") == 1
        assert (
            metric(
                server,
                "asr_gateway_sessions_ended_total",
                interface="webrtc",
                close_code="1000",
                by="server",
            )
            == 1
        )
        assert metric(server, "asr_gateway_audio_seconds_total", interface="webrtc") > 12
        assert metric(server, "asr_gateway_final_latency_seconds_count", interface="webrtc") >= 1


async def test_bad_offers_are_refused_before_a_peer_exists(riva_server: ServerThread) -> None:
    async with webrtc_gateway(riva_server.uri) as server:
        url = server.base_url + OFFER_PATH
        baseline = len(asyncio.all_tasks()) - 1
        cases = [
            (b"v=0\r\nnot sdp at all\r\n", "application/sdp", 400, "invalid_offer"),
            (
                json.dumps({"sdp": "garbage", "type": "offer"}).encode(),
                "application/json",
                400,
                "invalid_offer",
            ),
            (b'{"sdp": 1}', "application/json", 400, "invalid_offer"),
            (
                json.dumps({"sdp": "v=0", "type": "answer"}).encode(),
                "application/json",
                400,
                "invalid_offer",
            ),
            (b"v=0", "text/plain", 415, "unsupported_media_type"),
        ]
        for body, kind, status, code in cases:
            got, _, answer = await asyncio.to_thread(post, url, body, kind)
            assert (got, json.loads(answer)["code"]) == (status, code), (body, answer)
        # A real offer without an audio track (a data channel alone).
        pc = RTCPeerConnection(ice_configuration(()))
        pc.createDataChannel("asr")
        with host_addresses(("127.0.0.1",)):
            await pc.setLocalDescription(await pc.createOffer())
        offer = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
        await pc.close()
        got, _, answer = await asyncio.to_thread(post, url, offer, "application/json")
        assert got == 400 and b"one audio track" in answer, answer
        # The options are the WebSocket's; the audio format is the track's.
        for query in ("?language=", "?sample_rate=48000", "?nonsense=1"):
            got, _, answer = await asyncio.to_thread(post, url + query, offer, "application/json")
            assert (got, json.loads(answer)["code"]) == (400, "invalid_config"), (query, answer)
        await settled(server, baseline, scaled(5))


async def test_a_peer_that_never_connects_is_closed_within_the_timeout(
    riva_server: ServerThread,
) -> None:
    timeout = scaled(2)
    async with webrtc_gateway(riva_server.uri, connect_timeout=timeout) as server:
        baseline = len(asyncio.all_tasks()) - 1
        pc = RTCPeerConnection(ice_configuration(()))
        pc.addTransceiver("audio", direction="sendonly")
        pc.createDataChannel("asr")
        with host_addresses(("127.0.0.1",)):
            await pc.setLocalDescription(await pc.createOffer())
        offer = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
        await pc.close()  # nobody answers the gateway's connectivity checks
        started = time.monotonic()
        status, headers, _ = await asyncio.to_thread(
            post, server.base_url + OFFER_PATH, offer, "application/json"
        )
        assert status == 200 and headers["location"].startswith("/v1/webrtc/sessions/")
        assert server.active_sessions == 1  # a connecting peer holds its place
        await settled(server, baseline, timeout + scaled(3))
        assert time.monotonic() - started < timeout + scaled(1.5)
        failed = metric(server, "asr_gateway_webrtc_peers_failed_total", stage="ice")
        assert failed == 1
        assert metric(server, "asr_gateway_sessions_started_total", interface="webrtc") == 0


VANISHING_CLIENT = """
import asyncio, sys
sys.path[:0] = [{src!r}, {server!r}]
from asr_server.webrtc.client import PcmTrack, connect

async def main():
    track = PcmTrack(open({pcm!r}, "rb").read())
    call = await connect({url!r}, track, query={{"interim_results": "true"}})
    async for message in call.messages():
        if message["type"] == "transcript.partial":
            print("partial", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_peer_that_vanishes_mid_session_is_ended_and_cleaned_up(
    riva_server: ServerThread, tmp_path: Any
) -> None:
    media_timeout = scaled(2)
    async with webrtc_gateway(riva_server.uri, media_timeout=media_timeout) as server:
        baseline = len(asyncio.all_tasks()) - 1
        pcm = tmp_path / "jfk.pcm"
        pcm.write_bytes(jfk_pcm())
        script = VANISHING_CLIENT.format(
            src=str(REPO / "src"), server=str(REPO / "server"), pcm=str(pcm), url=server.base_url
        )
        client = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, stdout=asyncio.subprocess.PIPE
        )
        try:
            assert client.stdout is not None
            async with asyncio.timeout(scaled(30)):
                line = await client.stdout.readline()
            assert line == b"partial\n", line
            assert server.active_sessions == 1
            os.kill(client.pid, signal.SIGKILL)  # no DTLS close, no SCTP abort: gone
            await client.wait()
            killed = time.monotonic()
            await settled(server, baseline, media_timeout + scaled(10))
            # The media timeout, the session's close (no one to take it), the peer closed.
            assert time.monotonic() - killed < media_timeout + scaled(6)
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
        gone = metric(
            server,
            "asr_gateway_sessions_ended_total",
            interface="webrtc",
            close_code="1006",
            by="client",
        )
        assert gone == 1


async def test_limits_and_keys_are_the_websockets(riva_server: ServerThread) -> None:
    async with webrtc_gateway(
        riva_server.uri,
        api_keys=("k" * 24,),
        allowed_origins=("https://app.example",),
        limits=Limits(max_sessions=1),
    ) as server:
        url = server.base_url + OFFER_PATH
        offer = json.dumps({"sdp": "v=0", "type": "offer"}).encode()
        status, headers, _ = await asyncio.to_thread(post, url, offer, "application/json")
        assert status == 401 and headers["www-authenticate"] == "Bearer"
        status, _, _ = await asyncio.to_thread(
            post, url + "?api_key=wrong", offer, "application/json"
        )
        assert status == 401
        request = urllib.request.Request(url + "?api_key=" + "k" * 24, data=offer, method="POST")
        request.add_header("content-type", "application/json")
        request.add_header("origin", "https://evil.example")
        status, _, _ = await asyncio.to_thread(open_url, request)
        assert status == 403
        track = PcmTrack(jfk_pcm())
        async with await connect(server.base_url, track, query={"api_key": "k" * 24}) as call:
            first = await anext(call.messages())
            assert first["type"] == "session.begin"
            status, headers, body = await asyncio.to_thread(
                post, url + "?api_key=" + "k" * 24, offer, "application/json"
            )
            assert (status, json.loads(body)["code"]) == (503, "too_many_sessions")
            assert headers["retry-after"] == "1"
            # WHIP's hang-up: DELETE of the session's resource ends it like a close.
            request = urllib.request.Request(
                server.base_url + call.location + "?api_key=" + "k" * 24, method="DELETE"
            )
            status, _, _ = await asyncio.to_thread(open_url, request)
            assert status == 200
            async with asyncio.timeout(scaled(10)):
                async for _ in call.messages():
                    pass  # until the data channel closes
