"""Client-side load balancing over several Riva servers, as the gateway does in Kubernetes.

In production the gateway resolves ``dns:///riva-asr-headless.<ns>.svc.cluster.local:50051``
to every ready NIM pod and spreads streams with ``RIVA_LB_POLICY=round_robin``. Here gRPC's
static ``ipv4:`` resolver gives the same channel two real embedded servers on loopback:
streams must land on both, and keep succeeding when one of them stops.

Which server decoded a stream is seen through each server's engine: both run the real
Whisper engine behind a thin wrapper that counts its decodes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from asr import Final, RecognitionOptions, RivaASRClient
from asr.audio import chunk_bytes, load_pcm16
from asr.embedded.engine import Engine, Transcription, WhisperEngine

from .conftest import SPEECH, ServerThread, scaled

# The first 3.5 s of the JFK clip: one short utterance keeps each stream about a second.
CLIP_SECONDS = 3.5
# "my" is fragile in this short clip: int8 kernels on AVX2-only CPUs hear "am i". What
# this module tests is where streams go, so it checks the words every decode agrees on.
EXPECTED = "fellow americ"


class CountingEngine:
    """The real engine, counting the decodes it runs (they run on worker threads)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self.decodes = 0

    @property
    def name(self) -> str:
        return self._engine.name

    def transcribe(self, audio: object, **kwargs: object) -> Transcription:
        with self._lock:
            self.decodes += 1
        return self._engine.transcribe(audio, **kwargs)  # type: ignore[arg-type]  # passed through as given


class Servers:
    def __init__(self) -> None:
        whisper = WhisperEngine()  # the model is loaded once per process and shared
        self.engines = [CountingEngine(whisper), CountingEngine(whisper)]
        self.threads = [ServerThread(engine=engine) for engine in self.engines]
        self.running = [True, True]

    @property
    def target(self) -> str:
        return "ipv4:" + ",".join(thread.uri for thread in self.threads)

    def decodes(self) -> list[int]:
        return [engine.decodes for engine in self.engines]

    def stop(self, index: int) -> None:
        self.threads[index].stop()
        self.running[index] = False


@pytest.fixture
def servers() -> Iterator[Servers]:
    pair = Servers()
    try:
        yield pair
    finally:
        for index, running in enumerate(pair.running):
            if running:
                pair.stop(index)


@pytest.fixture(scope="module")
def clip() -> bytes:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    return pcm[: int(CLIP_SECONDS * 16_000) * 2]


# Finals only: no interim decodes, so each stream costs the CPU one decode.
FINALS_ONLY = RecognitionOptions(interim_results=False)


async def transcribe(client: RivaASRClient, pcm: bytes) -> str:
    events = [e async for e in client.stream(chunk_bytes(pcm, 100), FINALS_ONLY)]
    return " ".join(e.text for e in events if isinstance(e, Final)).lower()


@pytest.mark.timeout(scaled(120))
async def test_round_robin_spreads_streams_and_survives_a_stopped_server(
    servers: Servers, clip: bytes
) -> None:
    async with RivaASRClient(
        uri=servers.target, lb_policy="round_robin", timeout=scaled(10)
    ) as client:
        # Both servers are serving before the first stream: round_robin only picks among
        # connected subchannels, and a health call makes the channel connect.
        assert await client.health()

        for _ in range(4):
            assert EXPECTED in await transcribe(client, clip)
        first, second = servers.decodes()
        assert first > 0 and second > 0, f"streams did not land on both servers: {first, second}"

        # One server goes away (a NIM pod drained or crashed). New streams keep working:
        # the balancer drops the dead subchannel, and a stream that fails before its
        # first result is replayed on the other server.
        servers.stop(0)
        before = servers.decodes()
        for _ in range(2):
            assert EXPECTED in await transcribe(client, clip)
        after = servers.decodes()
        assert after[0] == before[0], "a stopped server decoded audio"
        assert after[1] > before[1]
        assert await client.health()


@pytest.mark.timeout(scaled(60))
async def test_without_round_robin_one_server_takes_every_stream(
    servers: Servers, clip: bytes
) -> None:
    # gRPC's default policy (pick_first) sends every call over one connection: why the
    # Kubernetes manifests set RIVA_LB_POLICY=round_robin for the headless Service.
    async with RivaASRClient(uri=servers.target, timeout=scaled(10)) as client:
        for _ in range(2):
            assert EXPECTED in await transcribe(client, clip)
    assert sorted(servers.decodes())[0] == 0
