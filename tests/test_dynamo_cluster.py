"""DynamoASRClient against two real ASR worker processes on loopback.

Discovery is Dynamo's file backend in a temporary folder and the request plane TCP on
127.0.0.1, so no etcd or NATS is needed (:mod:`tests.dynamo_workers`). Workers are real
subprocesses with the real engine; a killed one is killed with SIGKILL mid-session.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest

pytest.importorskip("dynamo.runtime", reason="needs the 'dynamo' extra (ai-dynamo-runtime)")

from asr import Final, Partial, chunk_bytes, load_pcm16
from asr.dynamo import DynamoASRClient
from asr.errors import StreamInterruptedError
from asr.markers import AudioItem
from asr.wer import word_error_rate

from .conftest import SPEECH, scaled
from .dynamo_workers import ENDPOINT, JFK, Cluster, running_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("dynamo")) as cluster:
        yield cluster


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
