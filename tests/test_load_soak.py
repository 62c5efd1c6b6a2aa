"""The load tool's soak at tiny scale: ``asr riva-local`` (2 streams) and ``asr serve``
(2 sessions) as subprocesses on loopback, 1 -> 3 -> 1 users over 30 s, Riva killed with
SIGKILL half-way and restarted on its port.

About a minute of wall time, so the tests that need the run are marked ``soak`` and
skipped unless selected: ``.venv/bin/pytest -m soak tests/test_load_soak.py``; the pure
accounting tests run everywhere. The assertions are the invariants
that hold on any CPU: every session is accounted for with a code, the gateway's own counts
agree with the clients', Riva comes back on the same port and the gateway serves again,
and the gateway's fds and threads return to their baseline.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from load.soak_figures import Outage, account_sessions, schedule
from load.soak_session import OUTCOMES, SoakSession

from .conftest import SPEECH
from .helpers import run_cli


@pytest.fixture(scope="module")
def report(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    if "soak" not in (request.config.getoption("markexpr") or ""):
        pytest.skip("a ~1 min soak: run with -m soak")
    out = tmp_path_factory.mktemp("soak")
    proc = run_cli(
        *("--soak", "--levels", "1,2,3,2,1", "--duration", "30", "--kill-riva-at", "15"),
        *("--riva-max-streams", "2", "--gateway-max-sessions", "2"),
        *("--clips", str(SPEECH / "ljspeech32"), "--max-clip-seconds", "5", "--settle", "15"),
        *("--out", str(out), "--quiet"),
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr
    assert "sessions:" in proc.stdout and "refused at the door" in proc.stdout
    assert (out / "soak.md").read_text().startswith("# Soak report")
    data: dict[str, Any] = json.loads((out / "soak.json").read_text())
    return data


@pytest.mark.soak
def test_every_session_is_accounted_for(report: dict[str, Any]) -> None:
    s = report["sessions"]
    results = report["session_results"]
    assert s["accounted"] is True and s["failed_without_code"] == 0
    assert s["sessions"] == len(results) > 0
    assert s["sessions"] == s["completed"] + s["refused_at_door"] + s["failed_after_begin"]
    assert s["failed_after_begin"] == (
        s["failed_overlapping_outage"]
        + s["failed_after_restart_before_recovery"]
        + s["failed_outside_outage"]
    )
    for r in results:
        assert r["outcome"] in OUTCOMES
        assert (r["code"] is None) == (r["outcome"] == "completed")
        assert (r["began"] is None) == (r["outcome"] == "refused")
        if r["outcome"] == "refused":
            assert r["audio_sent_seconds"] == 0  # audio goes only after session.begin
        if r["outcome"] == "completed":
            assert r["audio_sent_seconds"] == r["clip_seconds"]
    # Limits aligned (2 and 2) and the gateway never down: the door refuses with the
    # typed code only, and 3 users against 2 sessions meet it.
    assert set(s["refused_codes"]) == {"too_many_sessions"}
    assert s["admitted"] == s["completed"] + s["failed_after_begin"]


@pytest.mark.soak
def test_gateway_counts_agree_with_the_clients(report: dict[str, Any]) -> None:
    before, after = report["gateway_metrics"]["before"], report["gateway_metrics"]["after"]
    assert after["active_sessions"] == 0 and after["active_streams"] == 0
    assert after["sessions_started"] - before["sessions_started"] == report["sessions"]["admitted"]
    received = after["audio_seconds"] - before["audio_seconds"]
    sent = report["audio"]["overall"]["audio_sent_seconds"]
    assert sent > 0 and abs(received - sent) <= 0.05 * sent + 1.0


@pytest.mark.soak
def test_riva_restarts_on_its_port_and_the_gateway_serves_again(report: dict[str, Any]) -> None:
    restart = report["riva_restart"]
    assert restart["exit_code"] == -9 and restart["ready_at"] is not None
    servers = report["servers"]
    assert servers["riva_now"]["address"] == servers["riva_first"]["address"]
    assert servers["riva_now"]["pid"] != servers["riva_first"]["pid"]
    assert report["outage"]["recovered"] is not None  # a session completed after it
    assert report["exit_codes"] == {"gateway": 0, "riva_killed_0": -9, "riva": 0}
    # Sessions untouched by the outage recognise what they were sent.
    neither = report["audio"]["neither"]
    assert neither["word_recall"] is not None and neither["word_recall"] > 0.5


@pytest.mark.soak
def test_resources_return_to_baseline(report: dict[str, Any]) -> None:
    for name in ("gateway", "riva"):
        r = report["resources"][name]
        for reading in (r["before"], r["after"]):
            assert reading["rss_mb"] > 10 and reading["fds"] > 0 and reading["threads"] > 0
        assert r["comparison"]["measured"] is True
    assert report["resources"]["riva"]["same_process"] is False  # restarted
    gateway = report["resources"]["gateway"]["comparison"]
    assert gateway["fds"]["within"] and gateway["threads"]["within"], gateway
    assert report["timeline"] and all("gateway" in row for row in report["timeline"])


def _session(index: int, outcome: str, opened: float, closed: float, **kw: Any) -> SoakSession:
    fields: dict[str, Any] = {
        "index": index,
        "slot": 0,
        "step": 0,
        "clip": "c",
        "reference": "hello world",
        "opened": opened,
        "began": None if outcome == "refused" else opened,
        "closed": closed,
        "outcome": outcome,
        "code": None if outcome == "completed" else "backend_unavailable",
        "close_code": 1000,
        "clip_seconds": 1.0,
        "audio_sent_seconds": 0.0 if outcome == "refused" else 1.0,
        "finals": 1,
        "final_span_seconds": 0.8,
        "transcript": "hello world",
        "admitted_in_flight": 1,
    }
    return SoakSession(**(fields | kw))


def test_accounting_splits_failures_by_when_they_came() -> None:
    outage = Outage(killed=10.0, ready=12.0, recovered=14.0)
    sessions = [
        _session(0, "completed", 0.0, 5.0),
        _session(1, "refused", 6.0, 6.0, code="too_many_sessions"),
        _session(2, "failed", 8.0, 10.5),  # open at the kill
        _session(3, "failed", 12.5, 12.6),  # Riva back, gateway not yet
        _session(4, "failed", 20.0, 21.0, admitted_in_flight=3),  # neither
        _session(5, "completed", 14.0, 18.0),
    ]
    s = account_sessions(sessions, outage, riva_max_streams=2)
    assert s["accounted"] and s["sessions"] == 6 and s["completed"] == 2
    assert s["refused_codes"] == {"too_many_sessions": 1}
    assert s["failed_overlapping_outage"] == 1
    assert s["failed_after_restart_before_recovery"] == 1
    assert s["failed_outside_outage"] == 1
    assert s["failed_outside_outage_with_more_admitted_than_riva_streams"] == 1


def test_schedule_phases() -> None:
    steps = schedule([2, 4, 6, 4, 2], 50.0)
    assert [s.phase for s in steps] == ["up", "up", "peak", "down", "down"]
    assert steps[0].start == 0 and steps[-1].end == 50.0
    assert [s.level for s in steps] == [2, 4, 6, 4, 2]
