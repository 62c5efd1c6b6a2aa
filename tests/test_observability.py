"""Observability of the gateway against real peers: Prometheus metrics at ``/metrics``,
JSON logs with session and stream ids, and OpenTelemetry spans (when the SDK is installed).
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from asr.audio import load_pcm16
from asr.contract import ErrorCode
from asr.logs import configure_logging
from asr.settings import RivaSettings
from asr_server.app import GatewayServer
from asr_server.settings import ServerSettings

from .conftest import ServerThread, scaled
from .helpers import JFK, closed_port, error_of, gateway, receive_all, send_audio

FOUR_SECONDS = load_pcm16(JFK)[: 4 * 32_000]


def scrape(base_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """``/metrics`` parsed: (sample name, sorted labels) -> value."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=scaled(10)) as response:
        assert response.headers["Content-Type"].startswith("text/plain")
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_of_sessions_and_riva_calls(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri, api_keys=("k",)) as gw:
        async with connect(gw.url) as ws:  # refused: no key
            error_of(await receive_all(ws), ws, ErrorCode.UNAUTHORIZED)
        async with connect(gw.url + "?api_key=k") as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, FOUR_SECONDS[:32_000], then=())
            live = await asyncio.to_thread(scrape, gw.base_url)
            await send_audio(ws, FOUR_SECONDS[32_000:])
            messages = await receiver
        assert messages[-1]["type"] == "session.end"
        samples = await asyncio.to_thread(scrape, gw.base_url)
    ws_ = {"interface": "websocket"}
    assert value(live, "asr_gateway_active_sessions", **ws_) == 1
    assert value(live, "asr_gateway_active_streams") == 1
    assert value(samples, "asr_gateway_active_sessions", **ws_) == 0
    assert value(samples, "asr_gateway_active_streams") == 0
    assert value(samples, "asr_gateway_sessions_started_total", **ws_) == 1
    ended = "asr_gateway_sessions_ended_total"
    assert value(samples, ended, **ws_, close_code="1000", by="server") == 1
    assert value(samples, ended, **ws_, close_code="4001", by="server") == 1
    assert value(samples, "asr_gateway_audio_seconds_total", **ws_) == pytest.approx(4.0, abs=0.01)
    assert value(samples, "asr_gateway_first_partial_latency_seconds_count", **ws_) >= 1
    # The other interfaces' series exist from the start, at zero.
    for other in ("realtime", "rest"):
        assert ("asr_gateway_sessions_started_total", (("interface", other),)) in samples
    assert value(samples, "asr_gateway_max_sessions") == gw.settings.limits.max_sessions
    finals = value(samples, "asr_gateway_final_latency_seconds_count", **ws_)
    assert finals >= 1
    # Finals come within a few seconds of their audio on this machine.
    assert value(samples, "asr_gateway_final_latency_seconds_sum", **ws_) / finals < scaled(5)
    calls = value(samples, "asr_riva_call_seconds_count", method="StreamingRecognize", code="OK")
    assert calls >= 1
    assert value(samples, "asr_riva_breaker_state", endpoint=riva_server.uri) == 0


async def test_metrics_of_riva_errors_retries_and_breaker() -> None:
    uri = f"127.0.0.1:{closed_port()}"
    riva = {"breaker": {"fail_max": 2}, "retry": {"attempts": 4, "initial_backoff": 0.01}}
    async with gateway(uri, riva=riva) as gw, gateway(uri, riva=riva) as other:
        async with connect(gw.url) as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, b"\x00\x00" * 16_000 * 5, speed=1.0, then=())
            messages = await receiver
        error_of(messages, ws, ErrorCode.BACKEND_UNAVAILABLE)
        samples = await asyncio.to_thread(scrape, gw.base_url)
        untouched = await asyncio.to_thread(scrape, other.base_url)
    method = "StreamingRecognize"
    # Two failures trip the breaker; the third attempt is refused by it without a call.
    assert value(samples, "asr_riva_errors_total", method=method, code="UNAVAILABLE") == 2
    assert value(samples, "asr_riva_retries_total", method=method) == 2
    assert value(samples, "asr_riva_breaker_state", endpoint=uri) == 2
    assert value(samples, "asr_riva_breaker_opened_total", endpoint=uri) == 1
    ended = {"interface": "websocket", "close_code": "4007", "by": "server"}
    assert value(samples, "asr_gateway_sessions_ended_total", **ended) == 1
    # Each server has its own registry: the second one saw nothing.
    assert value(untouched, "asr_riva_errors_total", method=method, code="UNAVAILABLE") == 0


# --- logs ----------------------------------------------------------------------------


@pytest.fixture
def root_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


async def test_json_logs_carry_session_and_stream_ids(
    riva_server: ServerThread, root_logging: None
) -> None:
    out = io.StringIO()
    configure_logging("DEBUG", "json", stream=out)
    async with gateway(riva_server.uri, api_keys=("key-that-must-not-leak",)) as gw:
        async with connect(gw.url + "?api_key=key-that-must-not-leak") as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, FOUR_SECONDS[: 2 * 32_000])
            messages = await receiver
    session_id = messages[0]["session_id"]
    lines = [json.loads(line) for line in out.getvalue().splitlines()]  # every line is JSON
    assert all({"ts", "level", "logger", "message"} <= set(line) for line in lines)
    mine = [line for line in lines if line.get("session_id") == session_id]
    assert any(line["message"].startswith("opened from") for line in mine)
    assert any(line.get("close_code") == 1000 for line in mine)
    streams = [line for line in mine if "stream_id" in line]
    assert streams and all(line["stream_id"].startswith(session_id + "-") for line in streams)
    assert "key-that-must-not-leak" not in out.getvalue()


def test_log_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASR_SERVER_LOG_LEVEL", "debug")
    monkeypatch.setenv("ASR_SERVER_LOG_FORMAT", "json")
    settings = ServerSettings()
    assert (settings.log_level, settings.log_format) == ("DEBUG", "json")
    monkeypatch.setenv("ASR_SERVER_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        ServerSettings()


def test_importing_configures_no_logging() -> None:
    code = (
        "import logging, asr, asr.client, asr.logs, asr.metrics, asr_server, asr_server.app; "
        "print(len(logging.getLogger().handlers), logging.getLogger().level)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["0", str(logging.WARNING)]


# --- tracing -------------------------------------------------------------------------


async def test_opentelemetry_spans_per_session_and_stream(riva_server: ServerThread) -> None:
    sdk_trace = pytest.importorskip("opentelemetry.sdk.trace")
    export = pytest.importorskip("opentelemetry.sdk.trace.export")
    memory = pytest.importorskip("opentelemetry.sdk.trace.export.in_memory_span_exporter")
    exporter = memory.InMemorySpanExporter()
    provider = sdk_trace.TracerProvider()
    provider.add_span_processor(export.SimpleSpanProcessor(exporter))
    settings = ServerSettings(host="127.0.0.1", port=0, tracing=True)
    async with GatewayServer(
        settings, RivaSettings(uri=riva_server.uri), tracer_provider=provider
    ) as gw:
        async with connect(gw.url) as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, FOUR_SECONDS, then=[{"type": "finalize"}, {"type": "end"}])
            messages = await receiver
    session_id = messages[0]["session_id"]
    spans = exporter.get_finished_spans()
    sessions = [s for s in spans if s.name == "asr.session"]
    assert len(sessions) == 1
    session = sessions[0]
    assert session.attributes["asr.session_id"] == session_id
    assert session.attributes["asr.close_code"] == 1000
    assert session.attributes["asr.audio_seconds"] == pytest.approx(4.0, abs=0.01)
    streams = [s for s in spans if s.name == "riva.StreamingRecognize"]
    assert streams
    assert all(
        s.parent is not None and s.parent.span_id == session.context.span_id for s in streams
    )
    events = [e.name for s in streams for e in s.events]
    assert "first_partial" in events and "final" in events


async def test_tracing_off_by_default(riva_server: ServerThread) -> None:
    async with gateway(riva_server.uri) as gw:
        assert not gw.tracing.enabled
