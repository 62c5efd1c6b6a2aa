"""The gateway with ``ASR_SERVER_BACKEND=dynamo``: the own WebSocket contract, the REST
transcription route and ``/readyz`` against two real ASR worker subprocesses on Dynamo
(file discovery, TCP on loopback: :mod:`tests.dynamo_workers`), and a plain session
answered with the same messages and close code as through Riva (the embedded server).

Riva's address is a closed port here: nothing may reach Riva.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

pytest.importorskip("dynamo.runtime", reason="needs the 'dynamo' extra (ai-dynamo-runtime)")

from asr import load_pcm16
from asr.dynamo import DynamoSettings
from asr.wer import word_error_rate
from asr_server.app import GatewayServer

from .conftest import ServerThread, scaled
from .dynamo_workers import ENDPOINT, JFK, Cluster, running_cluster
from .helpers import JFK as JFK_WAV
from .helpers import check_transcript, closed_port, gateway, http, transcribe
from .rest_support import multipart, post


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("dynamo")) as cluster:
        yield cluster


@asynccontextmanager
async def dynamo_gateway() -> AsyncIterator[GatewayServer]:
    settings = DynamoSettings(endpoint=ENDPOINT, connect_timeout=scaled(30), load_interval=0.5)
    async with gateway(
        f"127.0.0.1:{closed_port()}", backend="dynamo", dynamo=settings, static_dir=None
    ) as gw:
        yield gw


async def ready(gw: GatewayServer) -> tuple[int, dict[str, Any]]:
    status, _, body = await asyncio.to_thread(http, gw.base_url + "/readyz")
    return status, json.loads(body)


def shape(messages: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    """Each message's type and fields, partials left out (how many come depends on how
    fast decodes run, not on the backend)."""
    return [(m["type"], sorted(m)) for m in messages if m["type"] != "transcript.partial"]


async def test_jfk_over_the_contract_same_as_through_riva(
    cluster: Cluster, riva_server: ServerThread
) -> None:
    pcm = load_pcm16(JFK_WAV)
    async with dynamo_gateway() as gw:
        assert gw.backend_label == f"Dynamo endpoint {ENDPOINT}"
        assert await ready(gw) == (200, {"status": "ready"})
        messages, ws = await transcribe(gw.url, pcm)
    check_transcript(messages, ws, JFK, max_wer=0.15)

    async with gateway(riva_server.uri, static_dir=None) as riva_gw:
        through_riva, riva_ws = await transcribe(riva_gw.url, pcm)
    assert shape(messages) == shape(through_riva)
    assert (ws.close_code, ws.close_reason) == (riva_ws.close_code, riva_ws.close_reason)
    assert messages[0]["config"] == through_riva[0]["config"]


async def test_rest_transcription_recognises_through_a_session(cluster: Cluster) -> None:
    body, content_type = multipart(
        ("model", b"whisper-1", None), ("file", JFK_WAV.read_bytes(), "jfk.wav")
    )
    async with dynamo_gateway() as gw:
        status, _, answer = await asyncio.to_thread(post, gw, body, content_type)
    assert status == 200, answer
    text = json.loads(answer)["text"]
    assert word_error_rate([JFK], [text]) <= 0.15, text


async def test_readyz_turns_503_when_no_worker_serves(cluster: Cluster) -> None:
    async with dynamo_gateway() as gw:
        assert (await ready(gw))[0] == 200
        for worker in cluster.workers:
            worker.stop()  # SIGTERM: the worker drains and leaves discovery
        # Polled as a Kubernetes probe would: the gateway has no event for it.
        async with asyncio.timeout(scaled(15)):
            while (answer := await ready(gw))[0] == 200:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
    assert answer == (503, {"status": "riva unavailable"})
