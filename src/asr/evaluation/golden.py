"""Golden files: expected transcripts and WER thresholds per clip, checked for regressions.

A golden file (``tests/golden/<set>-<condition>.json``)::

    {"set": "librispeech_mini", "condition": "clean", "max_wer": 0.06,
     "clips": {"1089-134686-0000": {"expected": "...", "max_wer": 0.1}, ...}}

``expected`` is what the engine produced when the file was written (for reading diffs);
the thresholds are what a run must stay under.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from ..wer import normalize
from .runner import SetResult

__all__ = ["GoldenFileError", "check", "load", "make", "mismatch"]


class GoldenFileError(ValueError):
    """A golden file that cannot be read, or that is not for the set being run."""


def load(path: Path) -> dict[str, Any]:
    """Read a golden file.

    Raises:
        FileNotFoundError: There is no such file.
        GoldenFileError: It is not a golden file (JSON with ``set``, ``condition``,
            ``max_wer`` and ``clips``).
    """
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise GoldenFileError(f"{path}: not JSON ({exc})") from exc
    keys = {"set", "condition", "max_wer", "clips"}
    if not isinstance(data, dict) or not keys <= data.keys():
        raise GoldenFileError(f"{path}: not a golden file (needs {', '.join(sorted(keys))})")
    return data


def mismatch(golden: dict[str, Any], name: str, condition: str, clip_ids: set[str]) -> str | None:
    """Why ``golden`` cannot judge a run of set ``name`` under ``condition``; ``None`` if it can.

    A golden file judges exactly one set and condition; its clips must all be in the set,
    so a run on another set cannot pass by matching nothing.
    """
    if golden["set"] != name or golden["condition"] != condition:
        return (
            f"the golden file is for set {golden['set']!r} ({golden['condition']}), "
            f"not {name!r} ({condition})"
        )
    missing = sorted(set(golden["clips"]) - clip_ids)
    if missing:
        more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        return f"clips of the golden file are not in the set: {', '.join(missing[:3])}{more}"
    return None


def check(result: SetResult, golden: dict[str, Any]) -> list[str]:
    """Every way ``result`` falls short of ``golden``; empty when it passes."""
    problems = []
    for clip in result.clips:
        spec = golden["clips"].get(clip.id)
        if spec is None:
            continue
        if clip.error is not None:
            problems.append(f"{clip.id}: {clip.error}")
        elif clip.wer is not None and clip.wer > spec["max_wer"]:
            problems.append(
                f"{clip.id}: WER {clip.wer:.1%} > {spec['max_wer']:.1%} "
                f"(got {clip.hypothesis!r}, golden {spec['expected']!r})"
            )
        elif clip.wer is None and spec.get("expected") == "" and clip.hypothesis:
            problems.append(f"{clip.id}: expected no text, got {clip.hypothesis!r}")
    if result.wer is not None and result.wer > golden["max_wer"]:
        problems.append(f"set WER {result.wer:.1%} > {golden['max_wer']:.1%}")
    return problems


def make(
    result: SetResult,
    *,
    margin: float = 0.05,
    set_margin: float = 0.02,
) -> dict[str, Any]:
    """A golden file from a run: thresholds are the measured WER plus a margin.

    A clip's margin is ``margin`` or one word of its reference, whichever is larger, so
    that a short clip does not fail on a single changed word.
    """
    clips = {}
    for clip in result.clips:
        measured = clip.wer if clip.wer is not None else 0.0
        words = len(normalize(clip.reference).split())
        slack = max(margin, 1 / words) if words else margin
        clips[clip.id] = {
            "expected": clip.hypothesis,
            "max_wer": math.ceil((measured + slack) * 100) / 100,
        }
    set_wer = result.wer if result.wer is not None else 0.0
    return {
        "set": result.name,
        "condition": result.condition,
        "max_wer": math.ceil((set_wer + set_margin) * 100) / 100,
        "clips": clips,
    }
