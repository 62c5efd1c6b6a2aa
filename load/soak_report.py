"""The soak report: everything as JSON, the figures that matter as Markdown, and a short
summary for the terminal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .report import codes_text, dash, write_json_and_markdown

__all__ = ["soak_markdown", "soak_summary", "write_soak_reports"]


def _codes(codes: dict[str, int]) -> str:
    return codes_text(codes, empty="none")


def _res(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "–"
    return f"{entry['rss_mb']:.0f} MB, {entry['fds']} fds, {entry['threads']} threads"


def _back(comparison: dict[str, Any]) -> str:
    if not comparison.get("measured"):
        return "not measured"
    parts = [
        f"{m} {comparison[m]['delta']:+g} (tol {comparison[m]['tolerance']:g})"
        for m in ("rss_mb", "fds", "threads")
    ]
    return ("yes: " if comparison["within"] else "**no**: ") + ", ".join(parts)


def soak_summary(report: dict[str, Any]) -> str:
    """The printed summary: sessions, audio, outage and resources in a few lines."""
    cfg, s, a = report["config"], report["sessions"], report["audio"]
    restart = report.get("riva_restart")
    lines = [
        f"soak: levels {','.join(map(str, cfg['levels']))} over {cfg['duration_seconds']:g} s "
        f"(Riva max_streams {cfg['riva_max_streams']}, gateway max_sessions "
        f"{cfg['gateway_max_sessions']}); {report['machine']['cpus']} CPUs, load average "
        f"{report['machine']['loadavg_at_start']} at start, "
        f"{report['machine'].get('loadavg_at_end')} at end",
        f"sessions: {s['sessions']} opened = {s['completed']} completed + "
        f"{s['refused_at_door']} refused at the door + {s['failed_after_begin']} failed after "
        f"session.begin (accounted: {s['accounted']})",
        f"  refused at the door: {_codes(s['refused_codes'])}",
        f"  failed after begin, overlapping the Riva outage: {s['failed_overlapping_outage']} "
        f"({_codes(s['failed_overlapping_outage_codes'])})",
        f"  failed after begin, after Riva was back but before the gateway recovered: "
        f"{s['failed_after_restart_before_recovery']} "
        f"({_codes(s['failed_after_restart_before_recovery_codes'])})",
        f"  failed after begin, outside both: {s['failed_outside_outage']} "
        f"({_codes(s['failed_outside_outage_codes'])}); of them with more sessions admitted "
        f"than Riva's streams: {s['failed_outside_outage_with_more_admitted_than_riva_streams']}",
    ]
    if restart:
        lines.append(
            f"Riva: SIGKILL at t={restart['killed_at']:g} s (exit {restart['exit_code']}, "
            f"{restart['admitted_open_at_kill']} sessions open), back on port {restart['port']} "
            f"at t={dash(restart.get('ready_at'))} s (down {dash(restart.get('down_seconds'))} s, "
            f"{restart['attempts']} attempt(s))"
        )
    outage = report.get("outage")
    if outage and outage.get("ready") is not None:
        lines.append(
            f"gateway recovered (first session after the restart that completed began) at "
            f"t={dash(outage.get('recovered'))} s, {dash(outage.get('recovery_seconds'))} s "
            "after Riva was back"
        )
    ready = ", ".join(f"{r['t']:g} s: {dash(r['status'])}" for r in report.get("readiness", []))
    if ready:
        lines.append(f"gateway /readyz changes: {ready}")
    lines.append("audio (admitted sessions): sent s / final spans s / word recall")
    rows = [("all", a["overall"])] + list(a["phases"].items())
    rows += [("outage or recovery", a["outage_or_recovery"]), ("neither", a["neither"])]
    for name, x in rows:
        lines.append(
            f"  {name:<19} {x['audio_sent_seconds']:>7.1f} / {x['final_span_seconds']:>7.1f} "
            f"/ {dash(x['word_recall'])} ({x['words_recognised']} of "
            f"{x['reference_words_sent']:g} words, {x['admitted_sessions']} sessions)"
        )
    gm = report.get("gateway_metrics") or {}
    before, after = gm.get("before") or {}, gm.get("after") or {}
    if before and after:
        lines.append(
            "gateway's own counts during the soak: "
            f"{after.get('sessions_started', 0) - before.get('sessions_started', 0):g} sessions "
            f"started, {after.get('audio_seconds', 0) - before.get('audio_seconds', 0):.1f} s "
            f"audio received; open after: {after.get('active_sessions'):g} sessions, "
            f"{after.get('active_streams'):g} Riva streams"
        )
    for name, r in report.get("resources", {}).items():
        same = "" if r["same_process"] else " (after: the restarted process)"
        lines.append(
            f"{name}: before {_res(r['before'])}; after {_res(r['after'])}{same}; back within "
            f"tolerance: {_back(r['comparison'])}"
        )
    lines.append(
        f"settled in {report.get('settle_seconds')} s; exit codes {report.get('exit_codes')}; "
        f"run took {report['wall_seconds']} s"
    )
    if report.get("server_error_logs"):
        lines.append(f"servers logged errors: {', '.join(report['server_error_logs'])}")
    return "\n".join(lines)


def soak_markdown(report: dict[str, Any]) -> str:
    """Summary, then a table per schedule step."""
    lines = ["# Soak report", "", "```text", soak_summary(report), "```", ""]
    lines += [
        f"Audio measures: {report['audio']['measure']}.",
        "",
        "| step | level | phase | opened | done | refused | failed (codes) | sent s | "
        "final spans s | word recall | peak admitted |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    peaks = _peak_admitted(report)
    for st in report["audio"]["steps"]:
        lines.append(
            f"| {st['step']} | {st['level']} | {st['phase']} | {st['sessions']} | "
            f"{st['completed']} | {st['refused_at_door']} | {st['failed_after_begin']} "
            f"({_codes(st['failed_codes'])}) | {st['audio_sent_seconds']:.1f} | "
            f"{st['final_span_seconds']:.1f} | {dash(st['word_recall'])} | "
            f"{peaks.get(st['step'], '–')} |"
        )
    if report.get("working_tree_changes"):
        files = ", ".join(f"`{f}`" for f in report["working_tree_changes"])
        lines += ["", f"The servers ran a working tree with uncommitted changes: {files}."]
    return "\n".join(lines) + "\n"


def _peak_admitted(report: dict[str, Any]) -> dict[int, int]:
    out: dict[int, int] = {}
    steps = report.get("schedule", [])
    for row in report.get("timeline", []):
        for st in steps:
            if st["start"] <= row["t"] < st["end"]:
                out[st["index"]] = max(out.get(st["index"], 0), row["admitted"])
    return out


def write_soak_reports(report: dict[str, Any], folder: Path, stem: str = "soak") -> list[Path]:
    """``stem``.json and ``stem``.md in ``folder``."""
    return write_json_and_markdown(report, folder, stem, soak_markdown)
