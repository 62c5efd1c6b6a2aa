"""A level's figures from its sessions, and whether the level kept up: plain functions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from asr.evaluation.runner import percentile
from asr.wer import word_error_rate

from .config import Criteria
from .session import SessionResult

__all__ = ["error_codes", "judge", "summarize"]


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    return {
        f"p{q}": None if (v := percentile(values, q)) is None else round(v, 1) for q in (50, 95, 99)
    }


def error_codes(results: Sequence[SessionResult]) -> dict[str, int]:
    """``Class:code`` of each failed session, counted."""
    return dict(Counter(f"{r.error}:{r.code}" for r in results if r.error is not None))


def summarize(results: Sequence[SessionResult], held_max: int) -> dict[str, Any]:
    """A level's figures from its sessions."""
    n = len(results)
    failed = [r for r in results if r.error is not None]
    ok = [r for r in results if r.error is None]
    scored = [r for r in ok if r.wer is not None]
    return {
        "sessions": n,
        "completed": len(ok),
        "with_transcript": sum(bool(r.transcript) for r in ok),
        "held_max": held_max,
        "errors": len(failed),
        "error_rate": round(len(failed) / n, 4) if n else 0.0,
        "timeouts": sum(r.timed_out for r in results),
        "timeout_rate": round(sum(r.timed_out for r in results) / n, 4) if n else 0.0,
        "refused": sum(r.refused for r in results),
        "error_codes": error_codes(results),
        "first_partial_ms": _pcts([r.first_partial_ms for r in ok if r.first_partial_ms]),
        "final_latency_ms": _pcts([r.final_latency_ms for r in ok if r.final_latency_ms]),
        "wer": (
            round(word_error_rate([c.reference for c in scored], [c.transcript for c in scored]), 4)
            if scored
            else None
        ),
        "audio_seconds": round(sum(r.audio_seconds for r in results), 2),
    }


def judge(summary: dict[str, Any], criteria: Criteria) -> list[str]:
    """Why a level did not keep up; empty when it did."""
    reasons = []
    if summary["error_rate"] > criteria.max_error_rate:
        reasons.append(f"error rate {summary['error_rate']:.0%} ({summary['error_codes']})")
    p95 = summary["final_latency_ms"]["p95"]
    if p95 is None:
        reasons.append("no final latency measured")
    elif p95 > criteria.max_final_p95_ms:
        reasons.append(f"final latency p95 {p95:.0f} ms > {criteria.max_final_p95_ms:.0f} ms")
    bound = criteria.max_first_partial_p95_ms
    first = summary["first_partial_ms"]["p95"]
    if bound is not None and first is not None and first > bound:
        reasons.append(f"first partial p95 {first:.0f} ms > {bound:.0f} ms")
    return reasons
