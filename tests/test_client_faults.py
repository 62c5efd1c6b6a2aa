"""Client retries, deadlines, circuit breaker and error translation, against a scripted
servicer on loopback that injects the faults."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterable, AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import grpc
import pytest

from asr import (
    BreakerSettings,
    CircuitOpenError,
    DeadlineExceededError,
    EndOfUtterance,
    Final,
    InvalidArgumentError,
    Partial,
    RecognitionOptions,
    ResourceExhaustedError,
    RetrySettings,
    RivaASRClient,
    StreamInterruptedError,
    SyncRivaASRClient,
    UnavailableError,
)
from asr.errors import (
    AuthenticationError,
    NotFoundError,
    ServerError,
    TransientError,
    UnimplementedError,
    from_grpc_error,
)

from .conftest import scaled
from .scripted import Script, start_scripted

AUDIO = bytes(range(256)) * 250  # 64,000 bytes: two seconds of PCM16 at 16 kHz


def chunks(data: bytes = AUDIO, size: int = 3_200) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def client_for(
    port: int,
    *,
    breaker: BreakerSettings | None = None,
    metadata: str | None = None,
    **retry: Any,
) -> RivaASRClient:
    """A client of the scripted server whose retries wait 50 ms at most; ``retry`` sets
    fields of :class:`RetrySettings`."""
    policy = RetrySettings.model_validate({"initial_backoff": 0.01, "max_backoff": 0.05} | retry)
    return RivaASRClient(uri=f"127.0.0.1:{port}", retry=policy, breaker=breaker, metadata=metadata)


async def collect(
    client: RivaASRClient,
    audio: Iterable[bytes | EndOfUtterance] | AsyncIterable[bytes | EndOfUtterance] | None = None,
    options: RecognitionOptions | None = None,
) -> list[Partial | Final]:
    return [e async for e in client.stream(audio if audio is not None else chunks(), options)]


@pytest.fixture
async def scripted() -> AsyncIterator[tuple[Script, int]]:
    script = Script(steps=["ok"])
    server, port = await start_scripted(script)
    yield script, port
    await server.stop(None)


async def test_stream_ok_delivers_partial_then_final(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    async with client_for(port) as client:
        events = await collect(client)
    assert [e.type for e in events] == ["partial", "final"]
    assert events[-1].text == f"bytes={len(AUDIO)}"
    assert script.calls == 1


async def test_unary_retries_unavailable_then_succeeds(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["unavailable", "unavailable", "ok"]
    async with client_for(port) as client:
        finals = await client.recognize(b"\x00\x00" * 100)
    assert [f.text for f in finals] == ["bytes=200"]
    assert script.calls == 3
    assert client.breaker.current_state == "closed"


async def test_unary_gives_up_after_attempts(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["unavailable"]
    async with client_for(port, attempts=3, breaker=BreakerSettings(fail_max=10)) as client:
        with pytest.raises(UnavailableError) as info:
            await client.list_models()
    assert info.value.code == "UNAVAILABLE"
    assert info.value.retryable
    assert script.calls == 3


async def test_resource_exhausted_is_retried(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["exhausted", "ok"]
    async with client_for(port) as client:
        models = await client.list_models()
    assert [m.name for m in models] == ["scripted-asr"]
    assert models[0].streaming and models[0].language_code == "en-US"
    assert script.calls == 2


async def test_invalid_argument_is_not_retried_nor_counted(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["invalid"]
    async with client_for(port, breaker=BreakerSettings(fail_max=1)) as client:
        for _ in range(3):
            with pytest.raises(InvalidArgumentError) as info:
                await collect(client)
            assert not info.value.retryable
        assert client.breaker.current_state == "closed"
    assert script.calls == 3


async def test_stream_cut_before_results_replays_audio_exactly(
    scripted: tuple[Script, int],
) -> None:
    script, port = scripted
    script.steps = ["cut_before_results", "ok"]
    async with client_for(port) as client:
        events = await collect(client)
    # The first attempt died after reading part of the audio; the second got all of it,
    # replayed from the start: nothing lost, nothing sent twice.
    assert script.calls == 2
    assert script.audio_bytes[0] < len(AUDIO)
    final = events[-1]
    assert isinstance(final, Final)
    assert final.text == f"bytes={len(AUDIO)}"
    assert final.audio_processed == 2.0


async def test_replayed_stream_keeps_end_of_utterance_markers_in_place(
    scripted: tuple[Script, int],
) -> None:
    script, port = scripted
    script.steps = ["cut_before_results", "ok"]
    items: list[bytes | EndOfUtterance] = [*chunks()]
    items[3:3] = [EndOfUtterance()]  # after 9,600 bytes
    items[12:12] = [EndOfUtterance()]  # after 35,200 bytes: past where the first call died
    async with client_for(port) as client:
        events = await collect(client, items)
    assert script.calls == 2
    assert script.eou_at == [[9_600], [9_600, 35_200]]
    assert events[-1].text == f"bytes={len(AUDIO)}"


async def test_stream_cut_after_results_is_not_retried(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["cut_after_results", "ok"]
    seen: list[Partial | Final] = []
    async with client_for(port) as client:
        with pytest.raises(StreamInterruptedError) as info:
            async for event in client.stream(chunks()):
                seen.append(event)
    assert [e.text for e in seen] == ["partial one", "final one"]
    assert info.value.code == "UNAVAILABLE"
    assert script.calls == 1


async def test_stream_beyond_replay_buffer_is_not_retried(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["cut_before_results", "ok"]
    # Half a second of replay buffer: less than the audio the first attempt consumed.
    async with client_for(port, replay_buffer_seconds=0.5) as client:
        with pytest.raises(StreamInterruptedError):
            await collect(client)
    assert script.calls == 1


async def test_deadline_fires_and_is_retried(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["hang"]
    async with client_for(port, attempts=2, breaker=BreakerSettings(fail_max=10)) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        with pytest.raises(DeadlineExceededError):
            await client.recognize(b"\x00\x00", timeout=0.3)
        elapsed = loop.time() - start
    assert script.calls == 2
    assert 0.6 <= elapsed < scaled(10)


async def test_stream_deadline(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    script.steps = ["hang"]
    async with client_for(port, attempts=1) as client:
        with pytest.raises(DeadlineExceededError):
            async for _ in client.stream(chunks(), timeout=0.3):
                pass


@asynccontextmanager
async def tripped(script: Script, port: int, reset_timeout: float) -> AsyncIterator[RivaASRClient]:
    """A client whose breaker (``fail_max=2``) two UNAVAILABLE answers have just opened;
    the scripted server answers the next call that gets through."""
    script.steps = ["unavailable", "unavailable", "ok"]
    breaker = BreakerSettings(fail_max=2, reset_timeout=reset_timeout)
    async with client_for(port, attempts=1, breaker=breaker) as client:
        for _ in range(2):
            with pytest.raises(UnavailableError):
                await client.list_models()
        yield client


async def test_breaker_opens_fails_fast_and_recovers(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    async with tripped(script, port, reset_timeout=0.3) as client:
        assert client.breaker.current_state == "open"
        with pytest.raises(CircuitOpenError) as info:
            await collect(client)
        assert info.value.retryable
        assert script.calls == 2  # refused without reaching the server
        # Waiting on the clock by design: the breaker half-opens once its 0.3 s reset
        # timeout has run out, at the next call; no event or state shows it before that.
        await asyncio.sleep(0.4)
        models = await client.list_models()  # the half-open trial call succeeds
        assert models and client.breaker.current_state == "closed"
    assert script.calls == 3


async def test_a_full_server_does_not_open_the_breaker(scripted: tuple[Script, int]) -> None:
    # RESOURCE_EXHAUSTED is a server at capacity, not a failing one: a burst of refusals
    # must not lock every caller out once a stream ends and there is room again.
    script, port = scripted
    script.steps = ["exhausted"] * 6 + ["ok"]
    async with client_for(port, attempts=1, breaker=BreakerSettings(fail_max=2)) as client:
        for _ in range(6):
            with pytest.raises(ResourceExhaustedError):
                await client.list_models()
            assert client.breaker.current_state == "closed"
        assert await client.list_models()
    assert script.calls == 7


async def test_serving_health_lets_a_trial_through_at_once(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    async with tripped(script, port, reset_timeout=300) as client:
        with pytest.raises(CircuitOpenError):
            await client.list_models()
        # The server is back and says so: no waiting out the 300 s reset timeout.
        assert await client.health()
        assert client.breaker.current_state == "half-open"
        assert await client.list_models()
        assert client.breaker.current_state == "closed"
    assert script.calls == 3


async def test_unreachable_server_is_unavailable() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with client_for(port, attempts=2) as client:
        assert await client.health() is False
        with pytest.raises(UnavailableError):
            await collect(client)


async def test_metadata_reaches_server(scripted: tuple[Script, int]) -> None:
    script, port = scripted
    metadata = "function-id=abc-123,authorization=Bearer nvapi-secret"
    async with client_for(port, metadata=metadata) as client:
        await collect(client)
        assert await client.health()
    assert script.metadata[0]["function-id"] == "abc-123"
    assert script.metadata[0]["authorization"] == "Bearer nvapi-secret"


async def test_audio_source_error_propagates(scripted: tuple[Script, int]) -> None:
    script, port = scripted

    async def broken() -> AsyncIterator[bytes]:
        yield AUDIO[:3200]
        raise OSError("microphone unplugged")

    async with client_for(port) as client:
        with pytest.raises(OSError, match="microphone unplugged"):
            await collect(client, broken())


def test_sync_client_streams_and_recognizes() -> None:
    async def serve() -> tuple[grpc.aio.Server, int]:
        return await start_scripted(Script(steps=["ok"]))

    loop = asyncio.new_event_loop()
    server, port = loop.run_until_complete(serve())
    import threading

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        with SyncRivaASRClient(uri=f"127.0.0.1:{port}") as client:
            events = list(client.stream(iter(chunks())))
            assert events[-1].text == f"bytes={len(AUDIO)}"
            assert client.recognize(b"\x00" * 10)[0].text == "bytes=10"
            assert client.health()
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(None), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()


def _status(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), grpc.aio.Metadata(), details="x")


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, UnavailableError),
        (grpc.StatusCode.DEADLINE_EXCEEDED, DeadlineExceededError),
        (grpc.StatusCode.RESOURCE_EXHAUSTED, ResourceExhaustedError),
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.UNAUTHENTICATED, AuthenticationError),
        (grpc.StatusCode.NOT_FOUND, NotFoundError),
        (grpc.StatusCode.UNIMPLEMENTED, UnimplementedError),
        (grpc.StatusCode.INTERNAL, ServerError),
    ],
)
def test_status_translation(code: grpc.StatusCode, expected: type[Exception]) -> None:
    error = from_grpc_error(_status(code))
    assert type(error) is expected
    assert error.code == code.name
    after_results = from_grpc_error(_status(code), results_seen=True)
    if issubclass(expected, TransientError):
        assert type(after_results) is StreamInterruptedError
    else:
        assert type(after_results) is expected
