"""Helpers shared by the test modules: the JFK clip, a gateway on loopback and WebSocket
sessions against it, raw sockets against ``asr serve`` in its own process, credentials,
the sans-I/O session's actions, and the load tool's CLI.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import TypeAdapter
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, paced
from asr.contract import ERRORS, ErrorCode, ErrorMessage, server_message_adapter
from asr.settings import RivaSettings
from asr.wer import word_error_rate
from asr_server.app import GatewayServer
from asr_server.protocol import Action, Close, Send
from asr_server.settings import ServerSettings

from .conftest import REPO, SPEECH, scaled

if TYPE_CHECKING:
    from asr.dynamo import DynamoSettings

JFK = SPEECH / "jfk" / "jfk.wav"
JFK_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)
JFK_WORDS = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
"""The JFK reference as the WER normaliser writes it."""


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def until(condition: Callable[[], object], timeout: float = 30) -> None:
    """Poll ``condition`` until it holds, for state that has no event to wait on (the
    gateway's session count, a breaker's state); fails after ``timeout`` s, scaled."""
    async with asyncio.timeout(scaled(timeout)):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


# --- the gateway in process, real WebSocket clients ----------------------------------


@asynccontextmanager
async def gateway(
    riva_uri: str,
    *,
    cert: tuple[Path, Path] | None = None,
    riva: dict[str, Any] | None = None,
    dynamo: DynamoSettings | None = None,
    **settings: Any,
) -> AsyncIterator[GatewayServer]:
    """The gateway on 127.0.0.1:<port 0>; ``backend="dynamo"`` in ``settings`` with
    ``dynamo`` recognises on Dynamo workers instead of Riva at ``riva_uri``."""
    server_settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        cert=cert[0] if cert else None,
        key=cert[1] if cert else None,
        **settings,
    )
    riva_settings = RivaSettings(uri=riva_uri, **(riva or {}))
    async with GatewayServer(server_settings, riva_settings, dynamo=dynamo) as server:
        yield server


async def receive_one(
    ws: ClientConnection, adapter: TypeAdapter[Any], *, timeout: float
) -> dict[str, Any]:
    """The next message, checked against ``adapter``; fails after ``timeout`` s, scaled."""
    async with asyncio.timeout(scaled(timeout)):
        frame = await ws.recv()
    assert isinstance(frame, str)
    adapter.validate_json(frame)
    message: dict[str, Any] = json.loads(frame)
    return message


async def receive_all(
    ws: ClientConnection,
    adapter: TypeAdapter[Any] = server_message_adapter,
    *,
    timeout: float = 120,
) -> list[dict[str, Any]]:
    """Every message until the server closes, each checked against ``adapter`` (the own
    contract's messages by default; NVIDIA's realtime API passes its events'); fails
    after ``timeout`` s, scaled."""
    messages = []
    async with asyncio.timeout(scaled(timeout)):
        # Iteration ends quietly on 1000; other close codes raise once the frames are read.
        with contextlib.suppress(ConnectionClosedError):
            async for frame in ws:
                assert isinstance(frame, str)
                adapter.validate_json(frame)
                messages.append(json.loads(frame))
    return messages


async def send_audio(
    ws: ClientConnection,
    pcm: bytes,
    *,
    speed: float = 2.0,
    chunk_ms: int = 100,
    then: Iterable[dict[str, Any]] = ({"type": "end"},),
) -> None:
    """Send ``pcm`` paced at ``speed`` x real time, then ``then``; stop if the server closes."""
    with contextlib.suppress(ConnectionClosed):
        async for chunk in paced(chunk_bytes(pcm, chunk_ms), PCM16_BYTES_PER_SECOND * speed):
            await ws.send(chunk)
        for message in then:
            await ws.send(json.dumps(message))


async def transcribe(
    url: str, pcm: bytes, *, query: str = "", speed: float = 2.0
) -> tuple[list[dict[str, Any]], ClientConnection]:
    async with connect(url + query) as ws:
        sender = asyncio.create_task(send_audio(ws, pcm, speed=speed))
        messages = await receive_all(ws)
        await sender
    return messages, ws


def check_order(messages: list[dict[str, Any]]) -> None:
    """session.begin first, seq 0.. without gaps, partials before their final, one id."""
    assert messages[0]["type"] == "session.begin"
    assert [m["seq"] for m in messages] == list(range(len(messages)))
    assert len({m["session_id"] for m in messages}) == 1
    in_utterance = False
    for m in messages:
        if m["type"] == "vad.speech_start":
            assert not in_utterance
            in_utterance = True
        elif m["type"] == "transcript.partial":
            assert in_utterance, "a partial outside an utterance"
        elif m["type"] == "vad.speech_end":
            assert in_utterance
            in_utterance = False
    finals = [m for m in messages if m["type"] == "transcript.final"]
    ends = [m["end"] for m in finals]
    assert ends == sorted(ends), "finals out of order"


def finals_text(messages: list[dict[str, Any]]) -> str:
    return " ".join(m["text"] for m in messages if m["type"] == "transcript.final")


def check_transcript(
    messages: list[dict[str, Any]], ws: ClientConnection, reference: str, *, max_wer: float
) -> None:
    """A whole session as it should go: events in order (check_order), a partial before
    the first final, ``session.end`` and close 1000, the finals within ``max_wer`` of
    ``reference`` and the end's transcript their text."""
    check_order(messages)
    kinds = [m["type"] for m in messages]
    assert "transcript.partial" in kinds
    assert kinds.index("transcript.partial") < kinds.index("transcript.final")
    assert kinds[-1] == "session.end" and ws.close_code == 1000
    text = finals_text(messages)
    assert word_error_rate([reference], [text]) <= max_wer, text
    assert messages[-1]["transcript"] == text


def error_of(messages: list[dict[str, Any]], ws: ClientConnection, code: ErrorCode) -> None:
    """The session ended with one ``error`` of ``code`` and its close code."""
    assert messages[-1]["type"] == "error", messages
    assert messages[-1]["code"] == code.value
    assert messages[-1]["retryable"] is ERRORS[code].retryable
    assert ws.close_code == ERRORS[code].close_code
    assert ws.close_reason == code.value


async def refused(url: str, code: ErrorCode, **kwargs: Any) -> str:
    """Open a session at ``url`` (``kwargs`` go to ``connect``) that the server ends with
    one ``error`` of ``code`` without being sent anything (error_of); the error's message."""
    async with connect(url, **kwargs) as ws:
        messages = await receive_all(ws)
    error_of(messages, ws, code)
    message: str = messages[-1]["message"]
    return message


# --- credentials: API keys and signed tokens ---------------------------------------

SECRET = "s3cret-token-signing-key-0123456789abcdef"
API_KEY = "ak_live_9f8e7d6c5b4a39281706"


def http(
    url: str, headers: dict[str, str] | None = None, context: ssl.SSLContext | None = None
) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``: status, headers and body, an HTTP error status included."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=scaled(10), context=context) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def get_token(base_url: str, key: str | None) -> tuple[int, dict[str, str], Any]:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    status, head, body = await asyncio.to_thread(http, base_url + "/v1/tokens", headers)
    return status, head, json.loads(body)


async def first_message(url: str, **kwargs: Any) -> dict[str, Any]:
    async with connect(url, **kwargs) as ws:
        message: dict[str, Any] = json.loads(await ws.recv())
    return message


# --- ``asr serve`` in its own process, raw sockets ---------------------------------

SERVE_API_KEY = "sk-live-4242-log-secret"
SERVE_TOKEN_SECRET = "hmac-secret-for-the-log-test-0123456789"


async def serve(level: str) -> tuple[asyncio.subprocess.Process, int]:
    """``asr serve`` on a free loopback port, log level ``level``, with an API key and a
    token secret set and its backend on a closed port; the process and its port."""
    env = os.environ | {
        "ASR_SERVER_API_KEYS": SERVE_API_KEY,
        "ASR_SERVER_TOKEN_SECRET": SERVE_TOKEN_SECRET,
        "ASR_SERVER_LOG_LEVEL": level,
    }
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "asr", "serve", "--host", "127.0.0.1", "--port", "0"),
        *("--server", "127.0.0.1:9"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None  # stdout=PIPE
    async with asyncio.timeout(scaled(60)):
        line = (await proc.stdout.readline()).decode()
    found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
    assert found, line
    return proc, int(found.group(1))


def exchange(port: int, request: bytes) -> bytes:
    """Send ``request`` raw; read the response head, or until the server closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=scaled(10)) as sock:
        sock.sendall(request)
        answer = b""
        try:
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
        except (TimeoutError, ConnectionResetError):
            pass
    return answer


def upgrade(target: str, *headers: str, version: str = "1.1") -> bytes:
    """A raw WebSocket upgrade request for ``target`` with extra ``headers``."""
    lines = [
        f"GET {target} HTTP/{version}",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *headers,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# --- the sans-I/O session --------------------------------------------------------

SILENCE_100MS = b"\x00\x00" * 1600  # 16 kHz PCM16


def sent(actions: list[Action]) -> list[object]:
    """The messages among ``actions``."""
    return [a.message for a in actions if isinstance(a, Send)]


def assert_error(actions: list[Action], code: ErrorCode) -> ErrorMessage:
    """``actions`` are exactly an error message with ``code`` and the close it maps to."""
    assert len(actions) == 2, actions
    send, close = actions
    assert isinstance(send, Send) and isinstance(send.message, ErrorMessage)
    assert send.message.code is code
    assert send.message.retryable is ERRORS[code].retryable
    assert close == Close(ERRORS[code].close_code, code.value)
    return send.message


# --- the load tool -----------------------------------------------------------------


def run_cli(
    *args: str, timeout: float, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m load ARGS`` from the repository root; ``timeout`` is scaled."""
    return subprocess.run(
        [sys.executable, "-m", "load", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=scaled(timeout),
        env=env,
    )


# --- asr riva-local in a child process ------------------------------------------------


class RivaProcess:
    """``asr riva-local`` in a child process, on a fixed port so it can be restarted.

    As a context manager it is started on entry, once serving, and stopped on exit.
    """

    def __init__(self, port: int, *extra: str) -> None:
        self.port = port
        self.extra = extra
        self.proc: subprocess.Popen[str] | None = None

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RivaProcess:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "asr", "riva-local", "--port", str(self.port), *self.extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # printed once serving, after the health check
        assert "serving on" in line, line

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(timeout=scaled(10))

    def pause(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.resume()
            self.proc.terminate()
            try:
                self.proc.wait(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                self.proc.kill()
