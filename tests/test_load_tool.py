"""The load tool at tiny scale: real server subprocesses on loopback, real sessions.

One run of ``python -m load`` (2 sessions of short clips through each path, then the
overload probe with limits of 1) feeds the structural checks and the refusal check.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from load.config import Criteria, is_loopback_uri
from load.judge import judge, summarize
from load.procs import read_proc
from load.session import SessionResult

from .conftest import SPEECH, scaled
from .helpers import run_cli


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("load")
    proc = run_cli(
        *("--mode", "both", "--levels", "2", "--clips", str(SPEECH / "ljspeech32")),
        *("--max-clip-seconds", "3", "--clips-per-session", "1", "--stagger", "0.5"),
        *("--overload-limit", "1", "--overload-extra", "2", "--max-seconds", "60"),
        *("--out", str(out), "--quiet"),
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (out / "load.md").read_text().startswith("# Load report")
    data: dict[str, Any] = json.loads((out / "load.json").read_text())
    return data


def test_report_structure(report: dict[str, Any]) -> None:
    assert [r["transport"] for r in report["ramps"]] == ["websocket", "grpc"]
    assert set(report["servers"]) == {"riva", "gateway"}
    assert report["exit_codes"] == {"gateway": 0, "riva": 0}  # SIGTERM: clean shutdown
    for ramp in report["ramps"]:
        (level,) = ramp["levels"]
        assert level["level"] == 2 and level["held_max"] == 2
        assert set(level["final_latency_ms"]) == {"p50", "p95", "p99"}
        assert set(level["first_partial_ms"]) == {"p50", "p95", "p99"}
        riva = level["processes"]["riva"]
        assert riva["cpu_seconds"] > 0 and riva["peak_rss_mb"] > 50
        assert "load_tool" in level["processes"]
        assert level["riva_cpu_seconds_per_audio_second"] > 0
        assert isinstance(level["keeps_up"], bool) and ramp["stopped"]


def test_sessions_completed_with_transcripts(report: dict[str, Any]) -> None:
    for ramp in report["ramps"]:
        (level,) = ramp["levels"]
        assert level["sessions"] == level["completed"] == level["with_transcript"] == 2
        assert level["errors"] == level["timeouts"] == 0
        assert level["wer"] is not None and level["wer"] <= 0.25
        for s in level["session_results"]:
            assert s["transcript"] and s["final_latency_ms"] is not None
            assert 0 < s["final_latency_ms"] < scaled(10_000)


def test_refusal_past_the_limit_is_a_typed_code(report: dict[str, Any]) -> None:
    probes = {p["transport"]: p for p in report["overload"]}
    expected = {
        "websocket": "ResourceExhaustedError:too_many_sessions",
        "grpc": "ResourceExhaustedError:RESOURCE_EXHAUSTED",
    }
    for transport, code in expected.items():
        probe = probes[transport]
        assert probe["limit"] == 1 and probe["extra"] == 2
        assert probe["refusal_codes"] == {code: 2}
        assert probe["refused"] == 2 and probe["extras_completed"] == 0
        # Refused at once, not after a stall...
        assert probe["time_to_refusal_ms"]["max"] < scaled(2_000)
        # ...while the admitted session finished with its transcript.
        assert probe["admitted"]["completed"] == probe["admitted"]["with_transcript"] == 1
        assert probe["clean"] is True


def test_refuses_non_loopback_targets() -> None:
    proc = run_cli(
        *("--riva", "203.0.113.5:50051", "--mode", "grpc", "--clips", str(SPEECH / "jfk")),
        timeout=30,
    )
    assert proc.returncode == 2
    assert "not loopback" in proc.stderr and "--allow-remote" in proc.stderr


@pytest.mark.parametrize("extra", [(), ("--soak", "--duration", "5")], ids=["ramp", "soak"])
def test_needs_speech_sets_named(extra: tuple[str, ...]) -> None:
    env = {k: v for k, v in os.environ.items() if k != "ASR_SPEECH_FIXTURES"}
    proc = run_cli(*extra, timeout=30, env=env)
    assert proc.returncode == 2
    (line,) = proc.stderr.splitlines()  # one line, no traceback
    assert line.startswith("load: ") and "ASR_SPEECH_FIXTURES" in line and "--speech" in line


def test_loopback_uris() -> None:
    assert is_loopback_uri("127.0.0.1:50051")
    assert is_loopback_uri("localhost:50051")
    assert is_loopback_uri("[::1]:50051")
    assert is_loopback_uri("ipv4:127.0.0.2:1")
    assert not is_loopback_uri("riva.internal:50051")
    assert not is_loopback_uri("dns:///riva:50051")


def _session(final: float | None, error: str | None = None) -> SessionResult:
    return SessionResult(
        transport="grpc",
        clip="c",
        reference="hello world",
        started=0.0,
        audio_seconds=1.0,
        wall_seconds=1.5,
        first_partial_ms=100.0,
        final_latency_ms=final,
        transcript="" if error else "hello world",
        wer=None if error else 0.0,
        error=error,
    )


def test_judge() -> None:
    good = summarize([_session(800.0), _session(900.0)], held_max=2)
    assert judge(good, Criteria(max_final_p95_ms=1000)) == []
    slow = judge(good, Criteria(max_final_p95_ms=500))
    assert len(slow) == 1 and "p95" in slow[0]
    bad = summarize([_session(800.0), _session(None, "Timeout")], held_max=2)
    assert bad["timeouts"] == 1 and bad["error_rate"] == 0.5
    assert any("error rate" in r for r in judge(bad, Criteria()))
    partials = judge(good, Criteria(max_first_partial_p95_ms=50))
    assert len(partials) == 1 and "first partial" in partials[0]


def test_read_proc_of_this_process() -> None:
    sample = read_proc(os.getpid())
    assert sample is not None and sample.cpu_seconds > 0 and sample.rss_bytes > 0
    assert sample.fds >= 3 and sample.threads >= 1  # stdin, stdout, stderr
    assert sample.as_dict()["rss_mb"] == round(sample.rss_bytes / 2**20, 1)
    assert read_proc(2**22 + 12345) is None
