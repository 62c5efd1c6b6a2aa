"""Reports of a WER run: JSON for machines, Markdown for people, a PNG of latencies."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .runner import SetResult, percentile

__all__ = ["summary", "to_json", "to_markdown", "write_reports"]


def summary(result: SetResult) -> dict[str, Any]:
    """The set's aggregate figures."""
    first = result.latencies("first_partial_ms")
    final = result.latencies("final_latency_ms")
    return {
        "set": result.name,
        "transport": result.transport,
        "condition": result.condition,
        "realtime": result.realtime,
        "clips": len(result.clips),
        "audio_seconds": round(sum(c.audio_seconds for c in result.clips), 3),
        "wer": result.wer,
        "errors": result.errors,
        "partials": sum(c.partials for c in result.clips),
        "first_partial_ms": {"p50": percentile(first, 50), "p95": percentile(first, 95)},
        "final_latency_ms": {"p50": percentile(final, 50), "p95": percentile(final, 95)},
    }


def to_json(results: Sequence[SetResult]) -> dict[str, Any]:
    """Everything measured, per set and per clip."""
    return {"sets": [summary(r) | {"clip_results": [asdict(c) for c in r.clips]} for r in results]}


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.0f}"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def to_markdown(results: Sequence[SetResult]) -> str:
    """A per-set table, then a per-clip table for each set."""
    lines = [
        "# WER and latency report",
        "",
        "| set | transport | condition | pacing | clips | WER | errors "
        "| first partial p50/p95 ms | final latency p50/p95 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        s = summary(r)
        lines.append(
            f"| {r.name} | {r.transport} | {r.condition} | "
            f"{'real time' if r.realtime else 'fast'} | {s['clips']} | {_pct(r.wer)} | "
            f"{r.errors} | {_ms(s['first_partial_ms']['p50'])} / "
            f"{_ms(s['first_partial_ms']['p95'])} | "
            f"{_ms(s['final_latency_ms']['p50'])} / {_ms(s['final_latency_ms']['p95'])} |"
        )
    for r in results:
        lines += [
            "",
            f"## {r.name} ({r.transport}, {r.condition})",
            "",
            "| clip | WER | partials | first partial ms | final latency ms | transcript |",
            "|---|---|---|---|---|---|",
        ]
        for c in r.clips:
            text = c.error if c.error else c.hypothesis
            lines.append(
                f"| {c.id} | {_pct(c.wer)} | {c.partials} | {_ms(c.first_partial_ms)} | "
                f"{_ms(c.final_latency_ms)} | {text.replace('|', '/')} |"
            )
    return "\n".join(lines) + "\n"


def plot_latencies(results: Sequence[SetResult], path: Path) -> None:
    """Box plots of first-partial and final latencies per set, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax, which, title in (
        (axes[0], "first_partial_ms", "time to first partial"),
        (axes[1], "final_latency_ms", "final latency after end of speech"),
    ):
        data = [r.latencies(which) or [float("nan")] for r in results]
        labels = [f"{r.name}\n{r.transport}, {r.condition}" for r in results]
        ax.boxplot(data, tick_labels=labels, showmeans=True)
        ax.set_title(title)
        ax.set_ylabel("milliseconds")
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_reports(results: Sequence[SetResult], folder: Path, stem: str = "wer") -> list[Path]:
    """Write ``stem``.json, ``stem``.md and ``stem``-latency.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{stem}.json", folder / f"{stem}.md", folder / f"{stem}-latency.png"]
    paths[0].write_text(json.dumps(to_json(results), indent=2) + "\n")
    paths[1].write_text(to_markdown(results))
    plot_latencies(results, paths[2])
    return paths
