"""deploy/monitoring/: Prometheus rules, their promtool unit tests and the Grafana dashboard.

- ``promtool check rules`` and ``promtool test rules`` (Debian's ``prometheus`` package;
  ``scripts/setup --with-browser`` installs it as root), and the dashboard's queries parsed
  by promtool too.
- Every alert has a severity, a ``for:`` (or a reason not to), a summary, a description
  and a runbook link to a heading of docs/runbook.md, and a firing and a silent case in
  the unit tests; the dashboard's SLO lines equal the alerts' thresholds.
- Every metric name, and every label matched on, exists in the ``/metrics`` of a real
  gateway that streamed audio through the embedded Riva server, and of one whose Riva is
  unreachable (for the error and breaker series).
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from websockets.asyncio.client import connect

from asr.audio import load_pcm16

from .conftest import REPO, ServerThread, scaled
from .helpers import JFK, closed_port, gateway, receive_all, send_audio

MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yaml"
RULE_TESTS = MONITORING / "alerts.test.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
RUNBOOK = REPO / "docs" / "runbook.md"

# Labels a query may use that a gateway's own /metrics does not show: Prometheus adds the
# target labels, and the gateway's session, latency and audio metrics are to gain
# `interface` (websocket, realtime, rest); the rules aggregate so that they work either way.
TARGET_LABELS = {"job", "instance"}
COMING_LABELS = {"interface"}

METRIC = re.compile(r"\basr_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(asr_[a-z0-9_]+)\{([^}]*)\}")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip(
            "promtool is not installed: Debian's prometheus package provides it "
            "(scripts/setup --with-browser installs it when run as root)"
        )
    return found


def run_promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool(), *args],
        cwd=MONITORING,
        capture_output=True,
        text=True,
        timeout=scaled(60),
        check=False,
    )


def rule_groups() -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = yaml.safe_load(RULES.read_text())["groups"]
    return groups


def rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [rule for rule in rules() if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])


def dashboard_exprs() -> list[str]:
    return [target["expr"] for panel in panels() for target in panel.get("targets", [])]


def concrete(expr: str) -> str:
    """A dashboard query with its Grafana variables replaced: ``$__rate_interval`` and
    the label variables (``=~"$job"``) by their names."""
    return expr.replace("$__rate_interval", "5m").replace("$", "")


# --- promtool -------------------------------------------------------------------------


def test_rules_pass_promtool_check() -> None:
    result = run_promtool("check", "rules", RULES.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules())} rules found" in result.stdout


def test_rules_pass_their_unit_tests() -> None:
    result = run_promtool("test", "rules", RULE_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_dashboard_queries_parse(tmp_path: Path) -> None:
    exprs = dashboard_exprs()
    checked = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": concrete(expr)}
                    for n, expr in enumerate(exprs)
                ],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(checked))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout


# --- the rules' shape -------------------------------------------------------------------


def runbook_anchors() -> set[str]:
    """GitHub's anchors of the runbook's headings."""
    anchors = set()
    in_code = False
    for line in RUNBOOK.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and (heading := re.match(r"#+\s+(.*)", line)):
            slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


def test_every_alert_is_labelled_annotated_and_linked() -> None:
    anchors = runbook_anchors()
    assert {"slos", "riva-down-or-degraded", "capacity-planning"} <= anchors
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names))
    for alert in alerts():
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        # A counter's increase over 30 minutes needs no `for:` on top.
        assert "for" in alert or "increase(" in alert["expr"], alert["alert"]
        annotations = alert["annotations"]
        assert annotations["summary"] and annotations["description"], alert["alert"]
        path, _, anchor = annotations["runbook_url"].partition("#")
        assert path == "docs/runbook.md", alert["alert"]
        assert anchor in anchors, f"{alert['alert']}: no heading #{anchor} in {path}"


def test_recording_rules_used_are_defined_before_use() -> None:
    defined: set[str] = set()
    for rule in rules():
        for used in re.findall(r"\basr:[a-z0-9_:]+", rule["expr"]):
            assert used in defined, f"{used} used before it is recorded"
        if "record" in rule:
            defined.add(rule["record"])


def test_every_alert_has_a_firing_and_a_silent_case() -> None:
    fires: set[str] = set()
    silent: set[str] = set()
    for case in yaml.safe_load(RULE_TESTS.read_text())["tests"]:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else silent).add(check["alertname"])
    names = {alert["alert"] for alert in alerts()}
    assert names - fires == set(), "alerts never shown firing"
    assert names - silent == set(), "alerts never shown silent"


def threshold(alert_name: str) -> float:
    (alert,) = (a for a in alerts() if a["alert"] == alert_name)
    found = re.search(r">\s*([0-9.]+)\s*$", alert["expr"])
    assert found, alert["expr"]
    return float(found.group(1))


def test_dashboard_slo_lines_are_the_alert_thresholds() -> None:
    lines = {}
    for panel in panels():
        defaults = panel.get("fieldConfig", {}).get("defaults", {})
        if defaults.get("custom", {}).get("thresholdsStyle", {}).get("mode") == "line":
            lines[panel["title"]] = defaults["thresholds"]["steps"][-1]["value"]
    assert lines == {
        "First partial latency p95 vs SLO (300 ms)": threshold("AsrFirstPartialLatencyP95High"),
        "Final latency p95 vs SLO (800 ms)": threshold("AsrFinalLatencyP95High"),
        "Session error rate vs SLO (0.5 %)": threshold("AsrSessionErrorRateHigh"),
        "Sessions refused (too_many_sessions, 4006)": threshold("AsrSessionsRefusedAtCapacity"),
    }
    assert threshold("AsrFirstPartialLatencyP95High") == 0.3  # docs/runbook.md, "SLOs"
    assert threshold("AsrFinalLatencyP95High") == 0.8
    assert threshold("AsrSessionErrorRateHigh") == 0.005


# --- the dashboard's shape --------------------------------------------------------------


def test_dashboard_uses_a_datasource_variable_and_no_fixed_uid() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 39  # Grafana 11
    assert board["id"] is None
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    text = DASHBOARD.read_text()
    uids = set(re.findall(r'"uid":\s*"([^"]*)"', text)) - {board["uid"]}
    assert uids == {"${datasource}", "-- Grafana --"}  # the variable, Grafana's annotations
    for panel in panels():
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
            assert panel["targets"], panel["title"]


def test_dashboard_shows_what_the_issue_asks_for() -> None:
    exprs = "\n".join(dashboard_exprs())
    for metric in (
        "asr_gateway_active_sessions",
        "asr_gateway_sessions_started_total",
        "asr_gateway_audio_seconds_total",
        "asr_gateway_first_partial_latency_seconds_bucket",
        "asr_gateway_final_latency_seconds_bucket",
        "asr_gateway_sessions_ended_total",
        "asr_riva_errors_total",
        "asr_riva_breaker_state",
        "asr_riva_call_seconds_bucket",
    ):
        assert metric in exprs, metric
    assert "sum by (interface)" in exprs


# --- names and labels against a real gateway ----------------------------------------------


Exposition = dict[str, set[frozenset[str]]]


def scrape(base_url: str) -> Exposition:
    """``/metrics``: each sample name with the label-name sets it appears with, and the
    sample names of families that have no sample yet (a labelled metric never used)."""
    with urllib.request.urlopen(base_url + "/metrics", timeout=scaled(10)) as response:
        text = response.read().decode()
    names: Exposition = {}
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count")}
    for family in text_string_to_metric_families(text):
        for suffix in suffixes.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).add(frozenset(sample.labels))
    return names


@pytest.fixture(scope="module")
def exposition(riva_server: ServerThread) -> Exposition:
    async def run() -> Exposition:
        four_seconds = load_pcm16(JFK)[: 4 * 32_000]
        async with gateway(riva_server.uri) as gw:
            async with connect(gw.url) as ws:
                receiver = asyncio.create_task(receive_all(ws))
                await send_audio(ws, four_seconds)
                messages = await receiver
            assert messages[-1]["type"] == "session.end"
            assert any(m["type"] == "transcript.final" for m in messages)
            healthy = await asyncio.to_thread(scrape, gw.base_url)
        # Riva unreachable: failed calls, retries and an open breaker.
        uri = f"127.0.0.1:{closed_port()}"
        riva = {"breaker": {"fail_max": 2}, "retry": {"attempts": 4, "initial_backoff": 0.01}}
        async with gateway(uri, riva=riva) as gw:
            async with connect(gw.url) as ws:
                receiver = asyncio.create_task(receive_all(ws))
                await send_audio(ws, b"\x00\x00" * 16_000 * 5, speed=1.0, then=())
                await receiver
            failing = await asyncio.to_thread(scrape, gw.base_url)
        merged: Exposition = {}
        for names in (healthy, failing):
            for name, label_sets in names.items():
                merged.setdefault(name, set()).update(label_sets)
        return merged

    return asyncio.run(run())


def queries() -> list[tuple[str, str]]:
    """(where, PromQL) of every rule and dashboard query."""
    found = [(rule.get("record") or rule["alert"], rule["expr"]) for rule in rules()]
    found += [
        (f"dashboard: {p['title']}", t["expr"]) for p in panels() for t in p.get("targets", [])
    ]
    return found


def test_every_metric_used_is_exported(exposition: Exposition) -> None:
    # The histograms and the error series were observed, not only declared.
    for name in (
        "asr_gateway_first_partial_latency_seconds_bucket",
        "asr_gateway_final_latency_seconds_bucket",
        "asr_riva_call_seconds_bucket",
        "asr_riva_errors_total",
        "asr_riva_breaker_opened_total",
        "asr_gateway_sessions_ended_total",
    ):
        assert exposition[name], f"{name} has no sample"
    for where, expr in queries():
        for name in METRIC.findall(expr):
            assert name in exposition, f"{where}: {name} is not in /metrics"


def test_every_label_used_is_exported(exposition: Exposition) -> None:
    allowed = TARGET_LABELS | COMING_LABELS
    every_label = {label for sets in exposition.values() for labels in sets for label in labels}
    for where, expr in queries():
        for name, matchers in SELECTOR.findall(expr):
            exported = {label for labels in exposition[name] for label in labels}
            for label in MATCHER.findall(matchers):
                assert label in exported | allowed, f"{where}: {name} has no label {label}"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (part.strip() for part in grouping.split(","))):
                assert label in every_label | allowed, f"{where}: no metric has label {label}"
