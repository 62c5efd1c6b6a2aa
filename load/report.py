"""The load report: everything as JSON, the figures that matter as Markdown."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["codes_text", "dash", "to_markdown", "write_json_and_markdown", "write_reports"]


def dash(value: Any, spec: str = "") -> str:
    """``value`` formatted with ``spec``; a dash for ``None``."""
    return "–" if value is None else format(value, spec)


def codes_text(codes: dict[str, int], empty: str = "–") -> str:
    """Counted codes as ```code` xN, ...``; ``empty`` when there are none."""
    return ", ".join(f"`{k}` x{v}" for k, v in codes.items()) or empty


def _v(value: Any, spec: str = ".0f") -> str:
    return dash(value, spec)


def _proc(processes: dict[str, Any], name: str) -> str:
    p = processes.get(name)
    if not p:
        return "–"
    rss = f", {p['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in p else ""
    return f"{p['cpu_percent_of_core']:.0f} %{rss}"


def to_markdown(report: dict[str, Any]) -> str:
    """Per mode a table of levels, the capacity found, then the overload probe."""
    cfg = report["config"]
    crit = cfg["criteria"]
    lines = [
        "# Load report",
        "",
        f"{report['started_at']}, {report['machine']['cpus']} CPUs (load average at start "
        f"{report['machine']['loadavg_at_start']}); clips from `{cfg['clips']}` "
        f"({cfg['clip_count']} clips, {min(cfg['clip_seconds']):.1f}-"
        f"{max(cfg['clip_seconds']):.1f} s), {cfg['clips_per_session']} per user, users "
        f"started {cfg['stagger_seconds']:g} s apart, streamed at real time in 100 ms chunks.",
        f"A level keeps up when at most {crit['max_error_rate']:.0%} of sessions fail and "
        f"the final latency p95 is at most {crit['max_final_p95_ms']:.0f} ms"
        + (
            f" and the first partial p95 at most {crit['max_first_partial_p95_ms']:.0f} ms."
            if crit.get("max_first_partial_p95_ms")
            else "."
        ),
        "CPU is per process over the level's wall time, in % of one core; memory is the peak "
        "resident size.",
    ]
    for ramp in report["ramps"]:
        lines += [
            "",
            f"## {ramp['transport']}",
            "",
            f"Capacity: **{ramp['capacity']} concurrent real-time sessions** "
            f"(first failing level: {_v(ramp['first_failing_level'], '')}; stopped: "
            f"{ramp['stopped']}).",
            "",
            "| sessions | held | done/total | errors | timeouts | first partial p50/p95/p99 ms "
            "| final p50/p95/p99 ms | WER | Riva CPU, RSS | gateway CPU, RSS | load tool CPU "
            "| keeps up |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for lv in ramp["levels"]:
            fp, fl = lv["first_partial_ms"], lv["final_latency_ms"]
            lines.append(
                f"| {lv['level']} | {lv['held_max']} | {lv['completed']}/{lv['sessions']} | "
                f"{lv['errors']} | {lv['timeouts']} | "
                f"{_v(fp['p50'])} / {_v(fp['p95'])} / {_v(fp['p99'])} | "
                f"{_v(fl['p50'])} / {_v(fl['p95'])} / {_v(fl['p99'])} | "
                f"{_v(lv['wer'], '.1%')} | {_proc(lv['processes'], 'riva')} | "
                f"{_proc(lv['processes'], 'gateway')} | "
                f"{_proc(lv['processes'], 'load_tool')} | "
                f"{'yes' if lv['keeps_up'] else 'no: ' + '; '.join(lv['reasons'])} |"
            )
    if report.get("overload"):
        lines += [
            "",
            "## Past the limit",
            "",
            "Servers restarted with their limit at the capacity; that many sessions held, "
            "then more opened at once.",
            "",
            "| transport | limit | extra | refused | codes | time to refusal p50/max ms "
            "| admitted done | admitted final p50/p95 ms | clean |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for p in report["overload"]:
            a, t = p["admitted"], p["time_to_refusal_ms"]
            codes = codes_text(p["refusal_codes"])
            lines.append(
                f"| {p['transport']} | {p['limit']} | {p['extra']} | {p['refused']} | {codes} | "
                f"{_v(t['p50'])} / {_v(t['max'])} | {a['completed']}/{p['limit']} | "
                f"{_v(a['final_latency_ms']['p50'])} / {_v(a['final_latency_ms']['p95'])} | "
                f"{'yes' if p['clean'] else 'no'} |"
            )
    elif report.get("overload_skipped"):
        lines += ["", f"Overload probe skipped: {report['overload_skipped']}."]
    if report.get("server_error_logs"):
        logs = ", ".join(f"`{p}`" for p in report["server_error_logs"])
        lines += ["", f"**Servers logged errors**; see {logs}."]
    lines += ["", f"Run took {report['wall_seconds']} s."]
    return "\n".join(lines) + "\n"


def write_json_and_markdown(
    report: dict[str, Any], folder: Path, stem: str, markdown: Callable[[dict[str, Any]], str]
) -> list[Path]:
    """``stem``.json (all of ``report``) and ``stem``.md (``markdown(report)``) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.json", folder / f"{stem}.md"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report))
    return paths


def write_reports(report: dict[str, Any], folder: Path, stem: str = "load") -> list[Path]:
    """``stem``.json and ``stem``.md in ``folder``."""
    return write_json_and_markdown(report, folder, stem, to_markdown)
