"""The golden runner through the WebSocket server: same transcripts as straight gRPC.

A real WebSocket server (in-process, plain ws:// on 127.0.0.1, port 0) in front of the real
embedded Riva server; failures come back as the typed errors a gRPC caller would get.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from websockets.asyncio.client import connect

from asr.client import RivaASRClient
from asr.contract import ERRORS, ErrorCode
from asr.errors import (
    AudioFormatError,
    ConfigurationError,
    InvalidArgumentError,
    ResourceExhaustedError,
    ServerError,
    UnavailableError,
)
from asr.evaluation.corpus import load_corpus
from asr.evaluation.runner import GrpcTransport, run_set
from asr.evaluation.websocket import (
    WebSocketTransport,
    dropped_options,
    error_from_message,
    is_loopback_url,
    session_config,
    websocket_transport,
)
from asr.events import Final, Partial
from asr.options import AudioEncoding, EndpointingConfig, RecognitionOptions
from asr.settings import RivaSettings
from asr.wer import normalize
from asr_server.app import GatewayServer
from asr_server.limits import Limits
from asr_server.settings import ServerSettings

from .conftest import SPEECH, ServerThread, scaled
from .helpers import closed_port


@asynccontextmanager
async def gateway(riva_uri: str, **limits: Any) -> AsyncIterator[GatewayServer]:
    settings = ServerSettings(host="127.0.0.1", port=0, static_dir=None, limits=Limits(**limits))
    # One attempt: a refused backend shows up at once instead of after the retry budget.
    riva = RivaSettings(uri=riva_uri, retry={"attempts": 1})
    async with GatewayServer(settings, riva) as server:
        yield server


async def _silence(seconds: float) -> AsyncIterator[bytes]:
    for _ in range(int(seconds * 10)):
        yield bytes(3200)
        await asyncio.sleep(0.1)


async def test_same_transcripts_as_grpc(riva_server: ServerThread) -> None:
    clips = load_corpus(SPEECH / "jfk") + load_corpus(SPEECH / "librispeech_mini")[:2]
    async with (
        gateway(riva_server.uri) as gw,
        RivaASRClient(uri=riva_server.uri) as client,
    ):
        async with asyncio.timeout(scaled(120)):
            grpc_result = await run_set(GrpcTransport(client), clips, name="golden")
            ws_result = await run_set(WebSocketTransport(gw.url), clips, name="golden")
    assert ws_result.transport == "websocket"
    assert ws_result.errors == 0
    for g, w in zip(grpc_result.clips, ws_result.clips, strict=True):
        assert normalize(w.hypothesis) == normalize(g.hypothesis), w.id
        assert w.wer == g.wer
        assert w.finals >= 1
        # Word times came back on the session clock, so the runner's measure works.
        assert w.final_latency_ms is not None and 0 <= w.final_latency_ms < scaled(10_000)
    assert ws_result.wer == grpc_result.wer
    assert ws_result.wer is not None and ws_result.wer < 0.05
    assert normalize(ws_result.clips[0].hypothesis) == normalize(clips[0].text)


async def test_events_carry_words_and_partials(riva_server: ServerThread) -> None:
    clip = load_corpus(SPEECH / "jfk")[0]
    pcm = (clip.samples()[: 16_000 * 4] * 32767).astype("<i2").tobytes()

    async def audio() -> AsyncIterator[bytes]:
        for i in range(0, len(pcm), 3200):
            yield pcm[i : i + 3200]
            await asyncio.sleep(0.05)

    options = RecognitionOptions(word_time_offsets=True)
    async with gateway(riva_server.uri) as gw, asyncio.timeout(scaled(60)):
        events = [e async for e in WebSocketTransport(gw.url).stream(audio(), options)]
    finals = [e for e in events if isinstance(e, Final)]
    assert any(isinstance(e, Partial) for e in events)
    assert isinstance(events[-1], Final)
    assert finals and finals[0].words
    assert finals[0].words[0].word.lower().startswith("and")
    assert 0 <= finals[0].start_ms <= finals[-1].end_ms <= 4_000  # type: ignore[operator]


async def test_too_many_sessions_is_resource_exhausted(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, max_sessions=1) as gw:
        async with connect(gw.url) as held:
            begin = json.loads(await held.recv())
            assert begin["type"] == "session.begin"
            with pytest.raises(ResourceExhaustedError) as info:
                async with asyncio.timeout(scaled(10)):
                    async for _ in WebSocketTransport(gw.url).stream(
                        _silence(1), RecognitionOptions()
                    ):
                        pass
    assert info.value.code == "too_many_sessions"
    assert info.value.retryable
    assert f"close {ERRORS['too_many_sessions'].close_code}" in str(info.value)  # type: ignore[index]


async def test_backend_down_is_unavailable() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        with pytest.raises(UnavailableError) as info:
            async with asyncio.timeout(scaled(20)):
                async for _ in WebSocketTransport(gw.url).stream(_silence(1), RecognitionOptions()):
                    pass
    assert info.value.code == "backend_unavailable"


async def test_server_down_is_unavailable() -> None:
    url = f"ws://127.0.0.1:{closed_port()}/v1/audio/transcriptions/stream"
    with pytest.raises(UnavailableError):
        async for _ in WebSocketTransport(url).stream(_silence(0.1), RecognitionOptions()):
            pass


async def test_bad_audio_is_audio_format_error(riva_server: ServerThread) -> None:
    async def odd() -> AsyncIterator[bytes]:
        yield b"\x00\x01\x02"

    async with gateway(riva_server.uri) as gw, asyncio.timeout(scaled(10)):
        with pytest.raises(AudioFormatError) as info:
            async for _ in WebSocketTransport(gw.url).stream(odd(), RecognitionOptions()):
                pass
    assert info.value.code == "invalid_audio"
    assert not info.value.retryable


def test_error_mapping_covers_every_code() -> None:
    assert set(ERRORS) == set(ErrorCode)
    for code, spec in ERRORS.items():
        exc = error_from_message({"code": code.value, "message": "m", "retryable": spec.retryable})
        assert exc.code == code.value
        # The client's class agrees with the contract's retryable flag, for every code.
        assert exc.retryable == spec.retryable, code
    unknown = error_from_message({"code": "new_code", "message": "m", "retryable": True})
    assert isinstance(unknown, UnavailableError)
    assert isinstance(error_from_message({"code": "x", "retryable": False}), ServerError)


def test_session_config() -> None:
    options = RecognitionOptions(
        word_time_offsets=True,
        automatic_punctuation=True,
        boosted_words=("riva",),
        boosted_score=4.0,
        endpointing=EndpointingConfig(stop_history=800),
    )
    config = session_config(options)
    assert config["type"] == "config"
    assert config["word_timestamps"] is True and config["punctuation"] is True
    assert config["boosted_words"] == ["riva"]
    assert config["endpointing"]["stop_history"] == 800
    with pytest.raises(InvalidArgumentError, match="encoding"):
        session_config(RecognitionOptions(encoding=AudioEncoding.FLAC))
    with pytest.raises(InvalidArgumentError, match="channels"):
        session_config(RecognitionOptions(channels=2))
    # Recognition settings the contract has no field for are left to the server.
    cli_like = RecognitionOptions(verbatim_transcripts=True, max_alternatives=2)
    assert dropped_options(cli_like) == ["verbatim_transcripts", "max_alternatives"]
    assert "verbatim_transcripts" not in session_config(cli_like)
    assert dropped_options(RecognitionOptions()) == []


def test_urls() -> None:
    assert is_loopback_url("ws://127.0.0.1:1/x")
    assert is_loopback_url("ws://localhost:1/x")
    assert is_loopback_url("ws://[::1]:1/x")
    assert not is_loopback_url("wss://example.com/x")
    with pytest.raises(ConfigurationError):
        websocket_transport(None)
    with pytest.raises(ConfigurationError):
        WebSocketTransport("http://127.0.0.1:1/")
    assert websocket_transport("ws://127.0.0.1:1/x").url == "ws://127.0.0.1:1/x"
