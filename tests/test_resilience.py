"""Faults in real processes: the Riva server killed, restarted, stalled, drained; several
Riva endpoints; TLS and mutual TLS to the embedded server."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr import (
    BreakerSettings,
    CircuitOpenError,
    DeadlineExceededError,
    Final,
    RetrySettings,
    RivaASRClient,
    RivaSettings,
    StreamInterruptedError,
    UnavailableError,
    chunk_bytes,
    load_pcm16,
    paced,
)
from asr.contract import CloseCode
from asr.wer import word_error_rate
from asr_server.app import STREAM_PATH, GatewayServer
from asr_server.settings import ServerSettings

from .conftest import SPEECH, ServerThread, scaled
from .helpers import JFK_WORDS, RivaProcess, closed_port, until
from .tls import CertificateAuthority

ONE_ATTEMPT = RetrySettings(attempts=1)  # the failures themselves are under test

JFK = JFK_WORDS
PCM = load_pcm16(SPEECH / "jfk" / "jfk.wav")


@pytest.fixture
def riva_process() -> Iterator[RivaProcess]:
    with RivaProcess(closed_port()) as process:
        yield process


async def wait_healthy(client: RivaASRClient, seconds: float = 10.0) -> None:
    """Poll the gRPC health check until SERVING, as a readiness probe does."""
    async with asyncio.timeout(scaled(seconds)):
        while not await client.health(timeout=1.0):  # noqa: ASYNC110 (polling a remote peer)
            await asyncio.sleep(0.1)


async def wait_routed_to_serving(
    client: RivaASRClient, times: int = 3, seconds: float = 10.0
) -> None:
    """Poll the health check through the client's channel until SERVING ``times`` in a row.

    With round_robin each check goes to the next endpoint the channel holds healthy, so
    consecutive SERVING answers mean the channel has taken in the servers' Watch updates
    and no longer routes to a draining one.
    """
    async with asyncio.timeout(scaled(seconds)):
        in_a_row = 0
        while in_a_row < times:
            in_a_row = in_a_row + 1 if await client.health(timeout=1.0) else 0
            if not in_a_row:
                await asyncio.sleep(0.05)


async def transcribe(client: RivaASRClient, pcm: bytes = PCM) -> str:
    events = [e async for e in client.stream(chunk_bytes(pcm, 100))]
    return " ".join(e.text for e in events if isinstance(e, Final))


async def test_riva_killed_mid_stream_then_restarted(riva_process: RivaProcess) -> None:
    tasks_before = len(asyncio.all_tasks())
    client = RivaASRClient(
        uri=riva_process.uri,
        retry=ONE_ATTEMPT,
        breaker=BreakerSettings(fail_max=2, reset_timeout=1.0),
        timeout=scaled(5),
    )
    async with client:
        assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
        # Kill the server once the first partial shows the stream is under way.
        seen = []
        with pytest.raises(StreamInterruptedError) as info:
            async for event in client.stream(paced(chunk_bytes(PCM, 100), 32_000)):
                seen.append(event)
                if len(seen) == 1:
                    riva_process.kill()
        assert seen and info.value.retryable
        # The server is gone: calls fail as UNAVAILABLE until the breaker opens...
        with pytest.raises(UnavailableError):
            await client.list_models()
        assert client.breaker.current_state == "open"
        # ...and then fail fast, without a connection attempt.
        with pytest.raises(CircuitOpenError):
            await transcribe(client)
        # Back on the same port: the health check's SERVING half-opens the breaker (no wait
        # for the reset timeout), and the trial call closes it.
        riva_process.start()
        await wait_healthy(client)  # reconnected within the capped backoff
        await until(lambda: client.breaker.current_state != "open", 5)
        assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
        assert client.breaker.current_state == "closed"
    assert len(asyncio.all_tasks()) == tasks_before  # nothing left running


async def test_stalled_riva_hits_the_deadline(riva_process: RivaProcess) -> None:
    async with RivaASRClient(uri=riva_process.uri, retry=ONE_ATTEMPT, timeout=1.0) as client:
        assert await client.list_models()
        riva_process.pause()  # the kernel still accepts; the process never answers
        try:
            loop = asyncio.get_running_loop()
            start = loop.time()
            with pytest.raises(DeadlineExceededError):
                await client.list_models()
            with pytest.raises(DeadlineExceededError):
                await client.recognize(PCM[:32_000], timeout=1.0)
            assert await client.health(timeout=1.0) is False
            assert loop.time() - start < scaled(10)
        finally:
            riva_process.resume()
        assert await client.list_models()


async def _session(
    url: str, pcm: bytes, transcribing: asyncio.Event | None = None
) -> tuple[list[dict[str, Any]], int | None]:
    """Stream ``pcm`` at real time over the WebSocket; all messages and the close code.

    ``transcribing`` is set at the first transcript message.
    """
    messages: list[dict[str, Any]] = []
    async with connect(url) as ws:

        async def send() -> None:
            with contextlib.suppress(ConnectionClosed):
                async for chunk in paced(chunk_bytes(pcm, 100), 32_000):  # real time
                    await ws.send(chunk)
                await ws.send(json.dumps({"type": "end"}))

        sender = asyncio.create_task(send())
        with contextlib.suppress(ConnectionClosed):
            async for frame in ws:
                messages.append(json.loads(frame))
                if transcribing is not None and messages[-1]["type"].startswith("transcript."):
                    transcribing.set()
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender
        return messages, ws.close_code


@contextlib.asynccontextmanager
async def gateway_for(uri: str) -> AsyncIterator[GatewayServer]:
    settings = ServerSettings(host="127.0.0.1", port=0)
    riva = RivaSettings(
        uri=uri,
        retry=ONE_ATTEMPT,
        breaker=BreakerSettings(fail_max=2, reset_timeout=1.0),
        timeout=scaled(5),
    )
    async with GatewayServer(settings, riva) as server:
        yield server


async def test_websocket_sessions_survive_a_riva_restart(riva_process: RivaProcess) -> None:
    async with gateway_for(riva_process.uri) as server:
        url = server.url if server.url.endswith(STREAM_PATH) else server.base_url + STREAM_PATH
        url = url.replace("http", "ws", 1)
        tasks_before = len(asyncio.all_tasks())

        # Killed mid-session, once Riva has answered: the client is told, with a typed
        # error and a close code.
        transcribing = asyncio.Event()

        async def kill_when_transcribing() -> None:
            await transcribing.wait()
            riva_process.kill()

        killer = asyncio.create_task(kill_when_transcribing())
        messages, code = await _session(url, PCM, transcribing)
        async with asyncio.timeout(scaled(5)):
            await killer  # a session that never transcribed fails here, not by hanging
        errors = [m for m in messages if m["type"] == "error"]
        assert errors, [m["type"] for m in messages]
        assert errors[-1]["code"] == "backend_unavailable" and errors[-1]["retryable"]
        assert code == CloseCode.BACKEND_UNAVAILABLE
        await until(lambda: server.active_sessions == 0, 5)
        # While Riva is down, a new session is refused the same way, promptly.
        async with asyncio.timeout(scaled(15)):
            messages, code = await _session(url, PCM[:64_000])
        assert code == CloseCode.BACKEND_UNAVAILABLE
        await until(lambda: server.active_sessions == 0, 5)
        # Back up: once /readyz sees Riva again and the breaker lets a trial call through,
        # new sessions succeed.
        riva_process.start()
        riva = server.client
        assert isinstance(riva, RivaASRClient)  # the default backend, with its breaker
        await wait_healthy(riva)  # SERVING half-opens the breaker at once
        await until(lambda: riva.breaker.current_state != "open", 5)
        messages, code = await _session(url, PCM)
        finals = [m["text"] for m in messages if m["type"] == "transcript.final"]
        assert code == 1000
        assert word_error_rate([JFK], [" ".join(finals)]) <= 0.1
        # The handler finishes just after the close handshake; then nothing is left behind.
        await until(lambda: server.active_sessions == 0, 5)
        await until(lambda: len(asyncio.all_tasks()) <= tasks_before, 5)


def test_endpoint_list_settings() -> None:
    settings = RivaSettings(uri="127.0.0.1:50051, localhost:50052")
    assert settings.target == "ipv4:127.0.0.1:50051,127.0.0.1:50052"
    assert settings.load_balancing == "round_robin"
    assert RivaSettings(uri="dns:///riva:50051").load_balancing is None
    with pytest.raises(ValueError, match="dns:///"):
        RivaSettings(uri="riva-a:50051,riva-b:50051")


async def test_unhealthy_endpoint_is_skipped() -> None:
    first, second = ServerThread(), ServerThread()
    try:
        uri = f"{first.uri},{second.uri}"
        first.call(lambda server: server.set_serving(False))  # draining
        async with RivaASRClient(uri=uri, health_check=True, timeout=scaled(10)) as client:
            for _ in range(3):
                assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
            assert first.decodes() == 0 and second.decodes() > 0
            # Swap: the second drains, the first serves again.
            first.call(lambda server: server.set_serving(True))
            second.call(lambda server: server.set_serving(False))
            before = second.decodes()
            await wait_routed_to_serving(client)  # health is streamed to the channel (Watch)
            for _ in range(2):
                assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
            assert first.decodes() > 0 and second.decodes() == before
    finally:
        first.stop()
        second.stop()


async def test_down_endpoint_is_skipped() -> None:
    live = ServerThread()
    try:
        uri = f"127.0.0.1:{closed_port()},{live.uri}"
        async with RivaASRClient(uri=uri, timeout=scaled(10)) as client:
            for _ in range(3):
                assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
    finally:
        live.stop()


@pytest.fixture
def pki(tmp_path: Path) -> dict[str, Any]:
    ca = CertificateAuthority(tmp_path)
    return {
        "ca": ca.pem,
        "server": ca.leaf("server", server=True),
        "client": ca.leaf("client", server=False),
        "rogue": CertificateAuthority(tmp_path, "rogue CA").leaf("rogue", server=False),
    }


async def test_mutual_tls_to_the_embedded_server(pki: dict[str, Any]) -> None:
    with RivaProcess(
        closed_port(),
        "--ssl-cert",
        str(pki["server"].cert),
        "--ssl-key",
        str(pki["server"].key),
        "--ssl-client-ca",
        str(pki["ca"].cert),
    ) as process:
        uri = f"localhost:{process.port}"
        async with RivaASRClient(
            uri=uri,
            ssl_root_cert=pki["ca"].cert,
            ssl_client_cert=pki["client"].cert,
            ssl_client_key=pki["client"].key,
        ) as client:
            assert word_error_rate([JFK], [await transcribe(client)]) <= 0.1
        for pem in (None, pki["rogue"]):
            async with RivaASRClient(
                uri=uri,
                ssl_root_cert=pki["ca"].cert,
                ssl_client_cert=pem.cert if pem else None,
                ssl_client_key=pem.key if pem else None,
                retry=ONE_ATTEMPT,
                timeout=scaled(5),
            ) as client:
                with pytest.raises(UnavailableError):
                    await transcribe(client)
        async with RivaASRClient(uri=uri, retry=ONE_ATTEMPT, timeout=scaled(5)) as client:
            with pytest.raises(UnavailableError):  # plaintext to a TLS server
                await client.list_models()
