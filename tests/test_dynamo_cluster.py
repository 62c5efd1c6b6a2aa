"""DynamoASRClient against two real ASR worker processes on loopback.

Discovery is Dynamo's file backend in a temporary folder and the request plane TCP on
127.0.0.1, so no etcd or NATS is needed. Workers are real subprocesses with the real
engine; a killed one is killed with SIGKILL mid-session.
"""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

pytest.importorskip("dynamo.runtime", reason="needs the 'dynamo' extra (ai-dynamo-runtime)")

from asr import Final, Partial, chunk_bytes, load_pcm16  # noqa: E402
from asr.dynamo import DynamoASRClient  # noqa: E402
from asr.errors import StreamInterruptedError  # noqa: E402
from asr.markers import AudioItem  # noqa: E402
from asr.wer import word_error_rate  # noqa: E402

from .conftest import SPEECH, scaled  # noqa: E402

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
ENDPOINT = "test.asr.stream"

_WORKER = (
    "import sys\n"
    "from asr.dynamo.worker import run_worker\n"
    "run_worker(endpoint=sys.argv[1], discovery_backend='file', decode_workers=1,\n"
    "           on_ready=lambda i: print('ready', i, flush=True))\n"
)


def dynamo_env(kv: Path) -> dict[str, str]:
    """Dynamo on one host: file discovery, TCP bound to loopback, quiet logs."""
    return {
        "DYN_DISCOVERY_BACKEND": "file",
        "DYN_FILE_KV": str(kv),
        "DYN_REQUEST_PLANE": "tcp",
        "DYN_TCP_RPC_HOST": "127.0.0.1",
        "DYN_TCP_RESPONSE_STREAM_HOST": "127.0.0.1",
        "DYN_LOG": "warn",
    }


class Worker:
    """One worker subprocess; :attr:`instance` is its Dynamo instance id once ready."""

    def __init__(self, kv: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, ENDPOINT],
            env=os.environ | dynamo_env(kv),
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.instance = self._wait_ready(scaled(90))

    def _wait_ready(self, timeout: float) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not readable:
                self.stop()
                raise TimeoutError(f"worker not ready after {timeout:g}s")
            byte = os.read(self.process.stdout.fileno(), 1)  # unbuffered: select sees all
            if not byte:
                raise RuntimeError(f"worker exited with {self.process.wait()}")
            line += byte
        kind, instance = line.decode().split()
        assert kind == "ready"
        return int(instance)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=scaled(10))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=scaled(20))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Cluster:
    def __init__(self, root: Path) -> None:
        self.kv = root / "kv"
        self.log = root / "workers.log"
        self.workers = [Worker(self.kv, self.log), Worker(self.kv, self.log)]

    def by_instance(self, instance: int) -> Worker:
        return next(w for w in self.workers if w.instance == instance)

    def replace(self, dead: Worker) -> None:
        """Start a new worker in place of ``dead``, so later tests have two again."""
        dead.stop()
        self.workers[self.workers.index(dead)] = Worker(self.kv, self.log)

    @property
    def live(self) -> set[int]:
        return {w.instance for w in self.workers if w.process.poll() is None}

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("dynamo")
    with pytest.MonkeyPatch.context() as env:
        for name, value in dynamo_env(root / "kv").items():
            env.setenv(name, value)
        cluster = Cluster(root)
        try:
            yield cluster
        finally:
            cluster.stop()
    # Nothing outlives the module: every worker process has exited.
    assert all(w.process.poll() is not None for w in cluster.workers)


@pytest.fixture(scope="module")
def jfk() -> bytes:
    return load_pcm16(SPEECH / "jfk" / "jfk.wav")


async def client_for(cluster: Cluster) -> DynamoASRClient:
    client = DynamoASRClient(endpoint=ENDPOINT, connect_timeout=scaled(30), load_interval=0.5)
    await client.connect()
    # Discovery may still list a worker killed by an earlier test: wait for the live ones.
    # Dynamo's Python client has no event for a changed instance list, only snapshots.
    async with asyncio.timeout(scaled(30)):
        while not cluster.live <= set(client.instances):  # noqa: ASYNC110
            await asyncio.sleep(0.1)
    return client


def finals(events: list[Partial | Final]) -> str:
    return " ".join(e.text for e in events if isinstance(e, Final))


async def test_jfk_transcript_through_dynamo(cluster: Cluster, jfk: bytes) -> None:
    client = await client_for(cluster)
    try:
        events = [e async for e in client.stream(chunk_bytes(jfk, 100))]
    finally:
        await client.close()
    assert word_error_rate([JFK], [finals(events)]) <= 0.15
    kinds = [e.type for e in events]
    assert kinds[-1] == "final" and "partial" in kinds
    assert all(isinstance(e, Partial | Final) for e in events)


async def test_sessions_spread_over_both_workers(cluster: Cluster, jfk: bytes) -> None:
    client = await client_for(cluster)
    short = jfk[: 16_000 * 2 * 3]  # 3 s: "and so my fellow americans"
    try:
        together = await asyncio.gather(
            *(collect(client.stream(chunk_bytes(short, 100))) for _ in range(2))
        )
        assert sorted(client.router.opened.values()) == [1, 1]  # one each, at once
        for _ in range(2):  # one after the other: the workers take turns
            together.append(await collect(client.stream(chunk_bytes(short, 100))))
        assert sorted(client.router.opened.values()) == [2, 2]
        loads = await client.refresh()
    finally:
        await client.close()
    assert set(loads) == cluster.live
    assert all(load.active_streams == 0 for load in loads.values())  # all sessions closed
    for events in together:
        assert "americans" in finals(events).lower()


async def collect(stream: AsyncIterator[Partial | Final]) -> list[Partial | Final]:
    return [e async for e in stream]


async def killing(
    cluster: Cluster, client: DynamoASRClient, pcm: bytes, *, after_chunks: int
) -> AsyncIterator[AudioItem]:
    """The audio in 100 ms chunks in real time; after ``after_chunks`` the worker serving
    the stream is killed (SIGKILL) and the rest follows at once."""
    for n, chunk in enumerate(chunk_bytes(pcm, 100)):
        if n == after_chunks:
            (instance,) = client.router.sessions.values()
            cluster.by_instance(instance).kill()
        elif n < after_chunks:
            await asyncio.sleep(0.1)
        yield chunk


async def test_worker_killed_before_a_result_is_replaced_transparently(
    cluster: Cluster, jfk: bytes
) -> None:
    client = await client_for(cluster)
    try:
        events = [e async for e in client.stream(killing(cluster, client, jfk, after_chunks=2))]
        (dead,) = {w.instance for w in cluster.workers} - cluster.live
        assert client.router.opened[dead] == 1  # the first attempt went there
        (survivor,) = cluster.live
        assert client.router.opened[survivor] == 1  # the replay went to the other
    finally:
        await client.close()
    # No audio lost or doubled: the whole sentence, once.
    assert word_error_rate([JFK], [finals(events)]) <= 0.15
    cluster.replace(cluster.by_instance(dead))


async def test_worker_killed_after_results_raises_then_survivor_serves(
    cluster: Cluster, jfk: bytes
) -> None:
    client = await client_for(cluster)
    try:
        seen: list[Partial | Final] = []
        with pytest.raises(StreamInterruptedError):
            async for event in client.stream(killing(cluster, client, jfk, after_chunks=40)):
                seen.append(event)
        assert seen, "results came before the kill"
        (survivor,) = cluster.live
        # New sessions go to the surviving worker, although discovery may still list the
        # dead one (until its lease runs out).
        before = client.router.opened.get(survivor, 0)
        events = [e async for e in client.stream(chunk_bytes(jfk, 100))]
        assert client.router.opened[survivor] == before + 1
        assert word_error_rate([JFK], [finals(events)]) <= 0.15
        loads = await client.refresh()
        assert loads[survivor].active_streams == 0
    finally:
        await client.close()
    # The client leaves no task behind (load poller, writers).
    current = asyncio.current_task()
    assert [t for t in asyncio.all_tasks() if t is not current] == []
    (dead,) = {w.instance for w in cluster.workers} - cluster.live
    cluster.replace(cluster.by_instance(dead))
