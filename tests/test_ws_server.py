"""The WebSocket server end to end: a real WebSocket client, the real embedded Riva server.

Everything runs on loopback with port 0. Audio is paced (at most 2x real time, inside the
server's ingest limit) except where a test provokes the limit on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import struct
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr.audio import (
    PCM16_BYTES_PER_SECOND,
    chunk_bytes,
    float32_to_pcm16,
    load_pcm16,
    paced,
    read_audio,
    resample,
)
from asr.contract import ErrorCode
from asr.wer import normalize, word_error_rate
from asr_server.app import STREAM_PATH
from asr_server.certs import write_self_signed
from asr_server.limits import Limits

from .conftest import ServerThread, load_set, scaled
from .helpers import (
    JFK,
    JFK_TEXT,
    check_order,
    check_transcript,
    closed_port,
    error_of,
    finals_text,
    gateway,
    receive_all,
    refused,
    send_audio,
    transcribe,
)

# --- transcripts ---------------------------------------------------------------------


async def test_jfk_event_order_partials_final_and_drain(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        messages, ws = await transcribe(
            gw.url, load_pcm16(JFK), query="?word_timestamps=true", speed=1.5
        )
    check_transcript(messages, ws, JFK_TEXT, max_wer=0.1)
    end = messages[-1]
    assert end["audio_seconds"] == pytest.approx(11.0, abs=0.05)
    finals = [m for m in messages if m["type"] == "transcript.final"]
    assert end["finals"] == len(finals)
    assert all(f["words"] for f in finals)
    assert 0.0 <= finals[0]["start"] < 1.0 and 9.5 < finals[-1]["end"] <= 11.0


async def test_every_utterance_gets_a_final(riva_server: ServerThread) -> None:
    clips = load_set("librispeech_mini")[2:4]  # 4.8 s and 10.4 s utterances
    silence = b"\x00\x00" * 32_000  # 2 s
    pcm = silence[:8000] + load_pcm16(clips[0].path) + silence + load_pcm16(clips[1].path)
    first_end = (4000 + len(load_pcm16(clips[0].path))) / PCM16_BYTES_PER_SECOND
    async with gateway(riva_server.uri) as gw:
        messages, ws = await transcribe(gw.url, pcm, query="?word_timestamps=true")
    check_order(messages)
    assert ws.close_code == 1000
    finals = [m for m in messages if m["type"] == "transcript.final" and m["text"]]
    assert len(finals) >= 2
    # The pause ends the first utterance by itself, before the second one starts.
    first = [f for f in finals if f["end"] <= first_end + 1.0]
    second = [f for f in finals if f["start"] >= first_end + 1.0]
    assert first and second and len(first) + len(second) == len(finals)
    assert first[-1]["is_speech_final"] is True
    hyp = [" ".join(f["text"] for f in group) for group in (first, second)]
    # Whisper tiny.en measures ~15 % on these two (prynne, mutton, flour-fattened).
    assert word_error_rate([c.text for c in clips], hyp) <= 0.25, hyp


async def test_finalize_forces_a_final_and_times_continue(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    cut = int(6.0 * PCM16_BYTES_PER_SECOND)  # mid-speech, in "your country", past the 4 s minimum
    async with gateway(riva_server.uri) as gw, connect(gw.url + "?word_timestamps=true") as ws:
        receiver = asyncio.create_task(receive_all(ws))
        await send_audio(ws, pcm[:cut], then=[{"type": "finalize"}])
        await send_audio(ws, pcm[cut:])
        messages = await receiver
    check_order(messages)
    finals = [m for m in messages if m["type"] == "transcript.final"]
    forced = [f for f in finals if f["is_speech_final"] is False and f["end"] <= 6.1]
    assert forced, finals
    later = finals[finals.index(forced[0]) + 1 :]
    assert later and all(f["start"] >= 5.8 for f in later)  # session time, not stream time
    # The cut falls inside "your country": the words either side of it are guesses (under
    # load tiny.en heard "ask not like you are coming | one tree can do for you", 6 of 22
    # words wrong), the rest must be right.
    text = finals_text(messages)
    assert word_error_rate([JFK_TEXT], [text]) <= 0.3, text
    assert "ask what you can do for your country" in normalize(text)


async def test_float32_at_48khz_through_config_message(riva_server: ServerThread) -> None:
    samples, rate = read_audio(JFK)
    audio48 = resample(samples, rate, 48_000).astype("<f4").tobytes()
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        await ws.send(json.dumps({"type": "config", "encoding": "float32", "sample_rate": 48_000}))
        receiver = asyncio.create_task(receive_all(ws))
        # 100 ms frames of float32 at 48 kHz are 19 200 bytes; paced at 2x real time.
        async for chunk in paced(chunk_bytes(audio48, 100, 48_000, 4), 48_000 * 4 * 2):
            await ws.send(chunk)
        await ws.send(json.dumps({"type": "end"}))
        messages = await receiver
    assert [m["type"] for m in messages[:2]] == ["session.begin", "session.updated"]
    assert messages[1]["config"]["encoding"] == "float32"
    assert messages[-1]["type"] == "session.end"
    assert messages[-1]["audio_seconds"] == pytest.approx(11.0, abs=0.05)
    assert word_error_rate([JFK_TEXT], [finals_text(messages)]) <= 0.1


async def test_end_without_audio_closes_cleanly(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        await ws.send(json.dumps({"type": "keepalive"}))
        await ws.send(json.dumps({"type": "end"}))
        messages = await receive_all(ws)
    assert [m["type"] for m in messages] == ["session.begin", "session.end"]
    assert ws.close_code == 1000


# --- errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("{'type': 'end'}", ErrorCode.INVALID_JSON),
        ('{"type": "transcribe"}', ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ('{"type": "end", "now": true}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "config", "encoding": "opus"}', ErrorCode.INVALID_CONFIG),
        (b"\x01\x02\x03", ErrorCode.INVALID_AUDIO),  # odd-length PCM16
    ],
)
async def test_bad_frames_get_typed_errors(
    riva_server: ServerThread, frame: str | bytes, code: ErrorCode
) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        await ws.send(frame)
        messages = await receive_all(ws)
    assert messages[0]["type"] == "session.begin"
    error_of(messages, ws, code)


async def test_nan_float32_is_invalid_audio(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url + "?encoding=float32") as ws:
        await ws.send(struct.pack("<3f", 0.0, float("nan"), 0.0))
        messages = await receive_all(ws)
    error_of(messages, ws, ErrorCode.INVALID_AUDIO)


async def test_wrong_encoding_in_query_is_invalid_config(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url + "?encoding=mulaw") as ws:
        messages = await receive_all(ws)
    assert len(messages) == 1 and messages[0]["seq"] == 0
    error_of(messages, ws, ErrorCode.INVALID_CONFIG)


async def test_oversize_frame(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, limits=Limits(max_frame_bytes=8192)) as gw:
        async with connect(gw.url) as ws:
            await ws.send(b"\x00" * 10_000)
            messages = await receive_all(ws)
        error_of(messages, ws, ErrorCode.FRAME_TOO_LARGE)
        # Far beyond the limit the WebSocket layer itself closes with 1009 (message too big).
        async with connect(gw.url) as ws:
            await ws.send(b"\x00" * 40_000)
            messages = await receive_all(ws)
        assert ws.close_code == 1009


async def test_too_fast(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    async with gateway(riva_server.uri) as gw, connect(gw.url) as ws:
        receiver = asyncio.create_task(receive_all(ws))
        with contextlib.suppress(ConnectionClosed):  # the server closes mid-send
            for chunk in chunk_bytes(pcm * 3, 100):  # 33 s of audio as fast as possible
                await ws.send(chunk)
        messages = await receiver
    warnings = [m for m in messages if m["type"] == "warning"]
    assert warnings and warnings[0]["code"] == "audio_too_fast"
    error_of(messages, ws, ErrorCode.TOO_FAST)


async def test_too_many_sessions(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, limits=Limits(max_sessions=1)) as gw:
        async with connect(gw.url) as first:
            begin = json.loads(await first.recv())
            assert begin["type"] == "session.begin"
            async with connect(gw.url) as second:
                messages = await receive_all(second)
            error_of(messages, second, ErrorCode.TOO_MANY_SESSIONS)
            assert messages[0]["seq"] == 0
        # The slot is free again once the first session is gone.
        async with connect(gw.url) as third:
            assert json.loads(await third.recv())["type"] == "session.begin"


async def test_backend_down_is_a_typed_error_not_a_hang() -> None:
    uri = f"127.0.0.1:{closed_port()}"
    async with gateway(uri) as gw, connect(gw.url) as ws:
        receiver = asyncio.create_task(receive_all(ws))
        loop = asyncio.get_running_loop()
        start = loop.time()
        await send_audio(ws, b"\x00\x00" * 16_000 * 30, speed=1.0, then=())
        messages = await receiver
        elapsed = loop.time() - start
    error_of(messages, ws, ErrorCode.BACKEND_UNAVAILABLE)
    assert messages[-1]["message"] == "the speech backend is unavailable; try again"
    # The client's retries (4 attempts, jittered backoff from 0.1 s) take about a second.
    assert elapsed < scaled(5)


async def test_unknown_model_from_riva_is_invalid_config(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw, connect(gw.url + "?model=no-such-model") as ws:
        receiver = asyncio.create_task(receive_all(ws))
        await send_audio(ws, load_pcm16(JFK)[: 2 * PCM16_BYTES_PER_SECOND])
        messages = await receiver
    error_of(messages, ws, ErrorCode.INVALID_CONFIG)


async def test_idle_timeout_and_keepalive(riva_server: ServerThread) -> None:
    limits = Limits(idle_timeout_seconds=0.5)
    async with gateway(riva_server.uri, limits=limits) as gw, connect(gw.url) as ws:
        loop = asyncio.get_running_loop()
        start = loop.time()
        messages = await receive_all(ws)
        elapsed = loop.time() - start
    error_of(messages, ws, ErrorCode.IDLE_TIMEOUT)
    assert 0.4 < elapsed < scaled(5)


async def test_session_too_long(riva_server: ServerThread) -> None:
    limits = Limits(max_session_seconds=0.6, idle_timeout_seconds=30)
    async with gateway(riva_server.uri, limits=limits) as gw, connect(gw.url) as ws:
        receiver = asyncio.create_task(receive_all(ws))
        for _ in range(20):
            if receiver.done():
                break
            try:
                await ws.send(json.dumps({"type": "keepalive"}))
            except ConnectionClosed:  # the server closed before the receiver saw it
                break
            await asyncio.sleep(0.1)  # pacing the client, not waiting for readiness
        messages = await receiver
    error_of(messages, ws, ErrorCode.SESSION_TOO_LONG)


async def test_config_required(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, require_config=True) as gw, connect(gw.url) as ws:
        await ws.send(b"\x00\x00" * 1600)
        messages = await receive_all(ws)
    error_of(messages, ws, ErrorCode.CONFIG_REQUIRED)


async def test_api_key(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, api_keys=("k1", "k2")) as gw:
        await refused(gw.url, ErrorCode.UNAUTHORIZED)
        await refused(gw.url + "?api_key=wrong", ErrorCode.UNAUTHORIZED)
        async with connect(gw.url + "?api_key=k2") as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"
        headers = {"Authorization": "Bearer k1"}
        async with connect(gw.url, additional_headers=headers) as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"


# --- HTTP, TLS -----------------------------------------------------------------------


def http_get(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=scaled(10), context=context) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers["Content-Type"], exc.read()


async def test_health_ready_and_static_files(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        status, _, body = await asyncio.to_thread(http_get, gw.base_url + "/healthz")
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        status, _, body = await asyncio.to_thread(http_get, gw.base_url + "/readyz")
        assert (status, json.loads(body)) == (200, {"status": "ready"})
        status, kind, body = await asyncio.to_thread(http_get, gw.base_url + "/")
        assert status == 200 and kind.startswith("text/html") and b"<html" in body
        status, kind, _ = await asyncio.to_thread(http_get, gw.base_url + "/app.js")
        assert status == 200 and kind.startswith("text/javascript")
        for path in ("/nope.js", "/../pyproject.toml", "/%2e%2e/pyproject.toml"):
            status, _, _ = await asyncio.to_thread(http_get, gw.base_url + path)
            assert status == 404, path
        # A plain GET of the WebSocket path is not upgraded.
        status, _, _ = await asyncio.to_thread(http_get, gw.base_url + STREAM_PATH)
        assert status == 426
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        status, _, body = await asyncio.to_thread(http_get, gw.base_url + "/readyz")
        assert status == 503 and json.loads(body)["status"] == "riva unavailable"
        status, _, _ = await asyncio.to_thread(http_get, gw.base_url + "/healthz")
        assert status == 200


async def test_wss_with_a_self_signed_certificate(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    cert, key = write_self_signed(tmp_path / "certs")
    assert cert.is_file() and oct(key.stat().st_mode & 0o777) == "0o600"
    assert write_self_signed(tmp_path / "certs") == (cert, key)  # kept, not rewritten
    client_context = ssl.create_default_context(cafile=cert)
    async with gateway(riva_server.uri, cert=(cert, key)) as gw:
        assert gw.url.startswith("wss://") and gw.base_url.startswith("https://")
        url = gw.url.replace("127.0.0.1", "localhost")
        pcm = load_pcm16(JFK)[: 4 * PCM16_BYTES_PER_SECOND]
        async with connect(url, ssl=client_context) as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, pcm)
            messages = await receiver
        assert messages[-1]["type"] == "session.end" and ws.close_code == 1000
        assert "fellow americans" in messages[-1]["transcript"].lower()
        status, _, _ = await asyncio.to_thread(
            http_get, gw.base_url.replace("127.0.0.1", "localhost") + "/healthz", client_context
        )
        assert status == 200


def test_resampled_pcm16_matches_float_path() -> None:
    """The two encodings of the same audio reach Riva as (nearly) the same PCM16."""
    from asr_server.decoding import AudioDecoder

    samples, rate = read_audio(JFK)
    audio48 = resample(samples, rate, 48_000)
    out = []
    for encoding, data, width in (
        ("pcm16", float32_to_pcm16(audio48), 2),
        ("float32", audio48.astype("<f4").tobytes(), 4),
    ):
        decoder = AudioDecoder(encoding, 48_000)  # type: ignore[arg-type]
        pcm = b"".join(decoder.decode(c) for c in chunk_bytes(data, 20, 48_000, width))
        out.append(np.frombuffer(pcm + decoder.flush(), dtype="<i2").astype(np.float64))
    assert abs(len(out[0]) - len(samples)) <= 2 and len(out[0]) == len(out[1])
    reference = np.frombuffer(load_pcm16(JFK), dtype="<i2").astype(np.float64)
    n = min(len(reference), len(out[1]))
    error = np.sqrt(np.mean((out[1][:n] - reference[:n]) ** 2)) / np.sqrt(np.mean(reference**2))
    assert error < 0.02  # 48 kHz round trip in 20 ms frames stays within 2 % RMS
