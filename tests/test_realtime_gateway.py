"""NVIDIA's realtime transcription API on a real gateway, to the real embedded Riva server.

NVIDIA's own client (``riva.client.realtime.RealtimeClientASR``, nvidia-riva-client 2.27)
runs unchanged with the ``args`` its script ``scripts/asr/realtime_asr_client.py`` parses,
in a thread of its own (it posts with blocking ``requests``); a plain ``websockets`` client
covers the edges: bad events, refusals, Riva down, ``force_eou``, back-pressure.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from riva.client.argparse_utils import (
    add_asr_config_argparse_parameters,
    add_connection_argparse_parameters,
    add_realtime_config_argparse_parameters,
)
from riva.client.asr import AudioChunkFileIterator, get_wav_file_parameters
from riva.client.realtime import RealtimeClientASR, _connect_websocket
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, load_pcm16
from asr.events import Progress
from asr.wer import normalize, word_error_rate
from asr_server.app import GatewayServer
from asr_server.certs import write_self_signed
from asr_server.limits import Limits
from asr_server.protocol import Close
from asr_server.realtime import RealtimeSession, TranscriptionSession, server_event_adapter
from asr_server.realtime import Send as RealtimeSend
from asr_server.realtime_connection import RealtimeConnection
from asr_server.routes_realtime import MAX_BACKLOG_SECONDS, REALTIME_PATH, SESSIONS_PATH
from asr_server.tokens import issue_token, verify_token

from .conftest import ServerThread, scaled
from .helpers import API_KEY, JFK, SECRET, RivaProcess, closed_port, gateway, get_token, http

REFERENCE = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)

# --- NVIDIA's client, as its script runs it ----------------------------------------------


def script_args(*argv: str) -> argparse.Namespace:
    """The namespace ``realtime_asr_client.py``'s ``parse_args`` builds from ``argv``:
    its own arguments, then riva.client's connection, ASR and realtime groups."""
    parser = argparse.ArgumentParser()
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--input-file")
    group.add_argument("--mic", action="store_true")
    group.add_argument("--list-devices", action="store_true")
    parser.add_argument("--duration", type=int, default=None)
    parser.add_argument("--input-device", type=int, default=None)
    parser.add_argument("--sample-rate-hz", type=int, default=16000)
    parser.add_argument("--num-channels", type=int, default=1)
    parser.add_argument("--file-streaming-chunk", type=int, default=1600)
    parser.add_argument("--output-text", type=str)
    parser.add_argument("--prompt", default="")
    parser = add_connection_argparse_parameters(parser)
    parser.set_defaults(server="localhost:9000")
    parser = add_asr_config_argparse_parameters(
        parser, max_alternatives=True, profanity_filter=True, word_time_offsets=True
    )
    parser = add_realtime_config_argparse_parameters(parser)
    args: argparse.Namespace = parser.parse_args(list(argv))
    return args


async def _run_transcription(args: argparse.Namespace) -> Any:
    """The script's ``create_audio_iterator`` (file input) and ``run_transcription``."""
    wav_parameters = get_wav_file_parameters(args.input_file)
    if wav_parameters is not None:
        args.sample_rate_hz = wav_parameters["framerate"]
        args.num_channels = wav_parameters["nchannels"]
    chunks = AudioChunkFileIterator(args.input_file, args.file_streaming_chunk, delay_callback=None)
    client = RealtimeClientASR(args=args)
    try:
        await client.connect()
        await asyncio.gather(client.send_audio_chunks(chunks), client.receive_responses())
        if args.output_text:
            client.save_responses(args.output_text)
    finally:
        await client.disconnect()
    return client


async def nvidia_transcribe(gw: GatewayServer, *argv: str) -> Any:
    """NVIDIA's client on JFK against ``gw``, on its own event loop in a thread."""
    args = script_args("--input-file", str(JFK), "--server", f"127.0.0.1:{gw.port}", *argv)
    async with asyncio.timeout(scaled(120)):
        return await asyncio.to_thread(asyncio.run, _run_transcription(args))


def shown_transcripts(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The completed transcripts NVIDIA's client logged, in order. The last result may
    repeat the last completed (same item, see ``realtime.transcript``): counted once."""
    texts: list[str] = []
    for record in caplog.records:
        if record.name != "riva.client.realtime" or not isinstance(record.args, tuple):
            continue
        text = str(record.args[0]) if record.args else ""
        if record.msg == "Interim Transcript: %s":
            texts.append(text)
        elif record.msg == "Final Transcript: %s" and (not texts or texts[-1] != text):
            texts.append(text)
    return texts


def wer(text: str, reference: str = REFERENCE) -> float:
    return word_error_rate([normalize(reference)], [normalize(text)])


def sample(gw: GatewayServer, name: str, **labels: str) -> float:
    """A sample of the gateway's metrics (0 when absent)."""
    value = gw.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def started(gw: GatewayServer, interface: str = "realtime") -> float:
    return sample(gw, "asr_gateway_sessions_started_total", interface=interface)


@pytest.fixture
def client_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    caplog.set_level(logging.INFO, logger="riva.client.realtime")
    yield caplog


async def test_nvidia_client_transcribes_jfk_without_keys(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    out = tmp_path / "jfk.txt"
    async with gateway(riva_server.uri) as gw:
        client = await nvidia_transcribe(gw, "--output-text", str(out), "--word-time-offsets")
        assert started(gw) == 1
        assert started(gw, "websocket") == 0
        ended = sample(
            gw,
            "asr_gateway_sessions_ended_total",
            interface="realtime",
            close_code="1000",
            by="server",
        )
        assert ended == 1
        audio = sample(gw, "asr_gateway_audio_seconds_total", interface="realtime")
        assert audio == pytest.approx(11.0)
        for latency in ("first_partial", "final"):
            name = f"asr_gateway_{latency}_latency_seconds_count"
            assert sample(gw, name, interface="realtime") >= 1
    texts = shown_transcripts(client_log)
    assert wer(" ".join(texts)) <= 0.15, texts
    # The script saves the last completed only (NVIDIA's client keeps no other).
    assert client.final_transcript == texts[-1]
    assert out.read_text() == texts[-1]
    assert client.is_config_updated
    assert client.session_config["input_audio_format"] == "none"  # the WAV file's bytes


async def test_nvidia_client_with_api_keys_mints_a_client_secret(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture
) -> None:
    async with gateway(riva_server.uri, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        await nvidia_transcribe(gw, "--mint-api-key", API_KEY)
        assert wer(" ".join(shown_transcripts(client_log))) <= 0.15
        assert started(gw) == 1
        # Without the key, or with a wrong one, the POST is refused and the script says why.
        for argv in ((), ("--mint-api-key", "wrong")):
            with pytest.raises(Exception, match=r"Session authentication failed \(HTTP 401"):
                await nvidia_transcribe(gw, *argv)
        assert started(gw) == 1


async def test_nvidia_client_over_tls(
    riva_server: ServerThread, client_log: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    """``--use-ssl --ssl-root-cert``: the POST over HTTPS, the WebSocket over WSS."""
    cert, key = write_self_signed(tmp_path / "certs")
    async with gateway(riva_server.uri, cert=(cert, key)) as gw:
        await nvidia_transcribe(gw, "--use-ssl", "--ssl-root-cert", str(cert))
        assert started(gw) == 1
    assert wer(" ".join(shown_transcripts(client_log))) <= 0.15


# --- the POST route ---------------------------------------------------------------------


async def post_session(
    gw: GatewayServer, key: str | None = None
) -> tuple[int, dict[str, str], Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"

    def post() -> tuple[int, dict[str, str], bytes]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            gw.base_url + SESSIONS_PATH, data=b"{}", headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=scaled(10)) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers), exc.read()

    status, head, body = await asyncio.to_thread(post)
    return status, head, json.loads(body)


async def test_post_session_object_and_openapi(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        status, head, body = await post_session(gw)
        assert status == 200 and head["Cache-Control"] == "no-store"
        session = TranscriptionSession.model_validate(body)
        assert session.client_secret is None
        assert session.id.startswith("sess_")
        assert session.input_audio_transcription.language == "en-US"
        _, _, raw = await asyncio.to_thread(http, gw.base_url + "/openapi.json")
    paths = json.loads(raw)["paths"]
    answer = paths[SESSIONS_PATH]["post"]["responses"]["200"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/TranscriptionSession"}
    assert set(paths[SESSIONS_PATH]["post"]["responses"]) >= {"200", "401", "429"}

    async with gateway(riva_server.uri, api_keys=(API_KEY,), token_secret=SECRET) as gw:
        status, head, body = await post_session(gw)
        assert status == 401 and head["WWW-Authenticate"] == 'Bearer realm="asr"'
        now = time.time()
        status, _, body = await post_session(gw, API_KEY)
        assert status == 200
        secret = body["client_secret"]
        claims = verify_token(SECRET.encode(), secret["value"], now=now)
        assert secret["expires_at"] == claims.expires_at
        assert abs(secret["expires_at"] - (now + gw.settings.token_ttl_seconds)) <= 2
        # Failures count in the one back-off of every route: 429 here, and on /v1/tokens.
        for _ in range(9):
            assert (await post_session(gw, "wrong"))[0] == 401
        status, head, body = await post_session(gw, API_KEY)
        assert status == 429 and int(head["Retry-After"]) >= 1, body
        assert (await get_token(gw.base_url, API_KEY))[0] == 429


# --- a plain websockets client ----------------------------------------------------------


def realtime_url(gw: GatewayServer, query: str = "?intent=transcription") -> str:
    return "ws" + gw.base_url.removeprefix("http") + REALTIME_PATH + query


def event(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def append(pcm: bytes, *, force_eou: bool = False) -> str:
    fields: dict[str, Any] = {"audio": base64.b64encode(pcm).decode()}
    if force_eou:
        fields["runtime_config"] = {"force_eou": "true"}
    return event("input_audio_buffer.append", **fields)


async def next_event(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(scaled(60)):
        frame = await ws.recv()
    assert isinstance(frame, str)
    server_event_adapter.validate_json(frame)
    parsed: dict[str, Any] = json.loads(frame)
    return parsed


async def events_until_close(ws: ClientConnection) -> list[dict[str, Any]]:
    """Every event until the server closes, each checked against the models."""
    events = []
    async with asyncio.timeout(scaled(120)):
        with contextlib.suppress(ConnectionClosedError):
            async for frame in ws:
                assert isinstance(frame, str)
                server_event_adapter.validate_json(frame)
                events.append(json.loads(frame))
    return events


async def send_pcm(ws: ClientConnection, pcm: bytes, *, chunk_ms: int = 100) -> None:
    """Append and commit ``pcm`` chunk by chunk, as fast as the socket takes it."""
    with contextlib.suppress(ConnectionClosed):
        for chunk in chunk_bytes(pcm, chunk_ms):
            await ws.send(append(chunk))
            await ws.send(event("input_audio_buffer.commit"))


def refused_with(events: list[dict[str, Any]], ws: ClientConnection, code: str, close: int) -> str:
    """The connection was refused: one ``error`` of ``code``, then close ``close``."""
    assert [e["type"] for e in events] == ["error"], events
    assert events[0]["error"]["code"] == code
    assert ws.close_code == close and ws.close_reason == code
    message: str = events[0]["error"]["message"]
    return message


def completed(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    kind = "conversation.item.input_audio_transcription.completed"
    return [e for e in events if e["type"] == kind]


async def test_bad_events_get_errors_and_the_session_goes_on(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    async with gateway(riva_server.uri) as gw:
        async with connect(realtime_url(gw), subprotocols=["realtime"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "realtime"
            assert (await next_event(ws))["type"] == "conversation.created"
            bad: list[tuple[str | bytes, str]] = [
                ("{not json", "invalid_json"),
                (event("response.create"), "unknown_event_type"),
                (event("input_audio_buffer.append", audio="A@A="), "invalid_event"),
                (event("transcription_session.update", session={"bogus": 1}), "invalid_event"),
                (b"\x00\x01", "unsupported_frame"),
            ]
            for frame, code in bad:
                await ws.send(frame)
                answer = await next_event(ws)
                assert answer["type"] == "error" and answer["error"]["code"] == code, answer
                assert answer["error"]["type"] == "invalid_request_error"
            await ws.send(event("transcription_session.update", session={}))
            assert (await next_event(ws))["type"] == "transcription_session.updated"
            await send_pcm(ws, pcm)
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
        assert ws.close_code == 1000
        assert not [e for e in events if e["type"] == "error"]
        finals = completed(events)
        assert finals[-1]["is_last_result"] is True
        distinct = {e["item_id"]: e["transcript"] for e in finals}
        assert wer(" ".join(distinct.values())) <= 0.15


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


async def test_riva_down_is_an_error_event_and_a_close() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            await send_pcm(ws, b"\x00\x00" * 16_000)
            events = await events_until_close(ws)
        error = events[-1]
        assert error["type"] == "error", events
        assert error["error"]["code"] == "backend_unavailable"
        assert error["error"]["retryable"] is True
        assert ws.close_code == 4007
        # The gateway keeps serving: the next connection opens.
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"


async def test_force_eou_completes_the_audio_so_far(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    head = pcm[: int(2.2 * PCM16_BYTES_PER_SECOND) // 2 * 2]  # "and so my fellow ..."
    async with gateway(riva_server.uri) as gw:
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            chunks = list(chunk_bytes(head, 100))
            for i, chunk in enumerate(chunks):
                await ws.send(append(chunk, force_eou=i == len(chunks) - 1))
                await ws.send(event("input_audio_buffer.commit"))
            # No more audio and no done: only the forced end can complete the utterance.
            while not (answer := await next_event(ws))["type"].endswith(".completed"):
                assert answer["type"] != "error", answer
            assert answer["is_last_result"] is False
            assert "fellow" in normalize(answer["transcript"]), answer
            first_item = answer["item_id"]
            # The session goes on: the rest of the audio, then done.
            await send_pcm(ws, pcm[len(head) :])
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
        assert ws.close_code == 1000
        rest = completed(events)
        assert rest[-1]["is_last_result"] is True
        assert first_item not in {e["item_id"] for e in rest}
        distinct = {e["item_id"]: e["transcript"] for e in rest}
        assert "country" in normalize(" ".join(distinct.values()))


# --- back-pressure ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def riva_process() -> Iterator[RivaProcess]:
    process = RivaProcess(closed_port())
    process.start()
    try:
        yield process
    finally:
        process.stop()


def the_session(gw: GatewayServer) -> RealtimeConnection:
    [connection] = gw.gateway.admission.sessions
    assert isinstance(connection, RealtimeConnection)
    return connection


async def stream_open(ws: ClientConnection, pcm: bytes) -> None:
    """Send ``pcm`` and wait for Riva's first delta: its call is open and answering."""
    await send_pcm(ws, pcm)
    while (answer := await next_event(ws))["type"] != (
        "conversation.item.input_audio_transcription.delta"
    ):
        assert answer["type"] != "error", answer


async def test_fast_audio_is_held_back_not_refused(riva_process: RivaProcess) -> None:
    """A client sending 33 s of audio at once while Riva is stopped: the session takes
    about MAX_BACKLOG_SECONDS more than Riva has processed and the gateway stops reading;
    once Riva goes on, so does the session, to the whole transcript."""
    pcm = load_pcm16(JFK) * 3
    async with gateway(riva_process.uri) as gw, connect(realtime_url(gw)) as ws:
        assert (await next_event(ws))["type"] == "conversation.created"
        first = 2 * PCM16_BYTES_PER_SECOND
        await stream_open(ws, pcm[:first])
        riva_process.pause()
        try:
            sender = asyncio.create_task(send_pcm(ws, pcm[first:]))
            session = the_session(gw).session
            for _ in range(int(scaled(200))):  # 10 s
                if session.backlogged:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"the backlog stayed at {session.backlog_seconds:.1f} s")
            taken = session.audio_seconds
            await asyncio.sleep(1.0)  # the reader has stopped: no more audio comes in
            assert session.audio_seconds == taken
            # Beyond the bound by at most the read-ahead: 8 chunks of 0.1 s.
            assert MAX_BACKLOG_SECONDS < session.backlog_seconds <= MAX_BACKLOG_SECONDS + 1.0
            # The rest waits in the sockets' buffers (and uvicorn's few frames), not in
            # the session: the client has sent it all, the session took about 12 s.
            assert taken < 20
        finally:
            riva_process.resume()
        await sender
        await ws.send(event("input_audio_buffer.done"))
        events = await events_until_close(ws)
    assert ws.close_code == 1000, events
    assert not [e for e in events if e["type"] == "error"]
    distinct = {e["item_id"]: e["transcript"] for e in completed(events)}
    assert wer(" ".join(distinct.values()), " ".join([REFERENCE] * 3)) <= 0.15


async def test_riva_stalled_while_the_client_is_held_is_backend_unavailable(
    riva_process: RivaProcess,
) -> None:
    limits = Limits(final_timeout_seconds=1.0, idle_timeout_seconds=0.5)
    pcm = load_pcm16(JFK) * 2
    async with gateway(riva_process.uri, limits=limits) as gw, connect(realtime_url(gw)) as ws:
        assert (await next_event(ws))["type"] == "conversation.created"
        first = 2 * PCM16_BYTES_PER_SECOND
        await stream_open(ws, pcm[:first])
        riva_process.pause()
        try:
            sender = asyncio.create_task(send_pcm(ws, pcm[first:]))
            events = await events_until_close(ws)
        finally:
            riva_process.resume()
        await sender
    # Held, the client is not idle: the stall is Riva's.
    assert events[-1]["type"] == "error", events
    assert events[-1]["error"]["code"] == "backend_unavailable"
    assert "(stalled)" in events[-1]["error"]["message"]
    assert ws.close_code == 4007


def test_backlogged_session_is_not_idle_and_waits_for_riva_progress() -> None:
    """The session's side of back-pressure, without sockets."""
    limits = Limits(idle_timeout_seconds=5, final_timeout_seconds=3)
    session = RealtimeSession(session_id="sess_x", limits=limits, now=0.0, max_backlog_seconds=2)
    session.open()
    session.receive_text(append(b"\x00\x00" * 16_000 * 3), 1.0)  # 3 s
    session.receive_text(event("input_audio_buffer.commit"), 1.0)
    assert session.backlogged and session.backlog_seconds == pytest.approx(3.0)
    # Held by the gateway, the client is not idle; Riva owes progress instead.
    assert session.deadline() == limits.max_session_seconds
    assert session.backend_deadline() == 4.0
    assert session.tick(4.0 - 1e-6) == []
    session.backend_event(Progress(audio_processed=0.5), offset=0, forced=False, now=3.5)
    assert session.backlogged and session.backend_deadline() == 6.5
    # Riva catches up: reading goes on, and the idle clock starts again from then.
    session.backend_event(Progress(audio_processed=2.0), offset=0, forced=False, now=6.0)
    assert not session.backlogged and session.backend_deadline() is None
    assert session.deadline() == 11.0
    stalled = RealtimeSession(session_id="sess_y", limits=limits, now=0.0, max_backlog_seconds=2)
    stalled.receive_text(append(b"\x00\x00" * 16_000 * 3), 1.0)
    stalled.receive_text(event("input_audio_buffer.commit"), 1.0)
    [error, close] = stalled.tick(4.0)
    assert isinstance(error, RealtimeSend) and error.event.type == "error"
    assert error.event.error.code == "backend_unavailable"
    assert close == Close(4007, "backend_unavailable")
