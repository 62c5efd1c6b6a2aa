"""The overload probe: past the limit, sessions are refused at once and cleanly.

The servers run with their limits set to the capacity the ramp found (``max_streams`` of
the Riva server, ``max_sessions`` of the WebSocket server). The probe holds that many
sessions and opens ``overload_extra`` more: they must be refused at once with the typed
code (RESOURCE_EXHAUSTED / ``too_many_sessions``) while the admitted ones finish with
their transcripts and latencies intact.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

import numpy as np

from asr.evaluation.runner import Transport

from .judge import error_codes, summarize
from .levels import LevelRunner
from .procs import CpuWindow
from .session import InFlight

__all__ = ["overload"]


async def overload(runner: LevelRunner, transport: Transport, limit: int) -> dict[str, Any]:
    """Hold ``limit`` sessions, then open ``overload_extra`` more at once."""
    # The longest clip, so the admitted sessions are still running when extras arrive.
    clip = max(runner.clips, key=lambda c: c.seconds)
    held = InFlight()
    window = CpuWindow(runner.servers)
    admitted = [asyncio.create_task(runner.session(transport, clip, held)) for _ in range(limit)]
    await asyncio.sleep(min(1.0, clip.seconds / 4))  # let every admitted stream open
    extras = await asyncio.gather(
        *(runner.session(transport, clip, held) for _ in range(runner.config.overload_extra))
    )
    kept = await asyncio.gather(*admitted)
    processes = window.close()
    refused = [r for r in extras if r.refused]
    refusal_ms = [r.error_after_ms for r in refused if r.error_after_ms is not None]
    kept_summary = summarize(kept, limit)
    clean = (
        len(refused) == len(extras)
        and kept_summary["completed"] == limit
        and kept_summary["with_transcript"] == limit
    )
    return {
        "transport": transport.name,
        "limit": limit,
        "extra": len(extras),
        "admitted": kept_summary,
        "refused": len(refused),
        "refusal_codes": error_codes(extras),
        "time_to_refusal_ms": {
            "p50": None if not refusal_ms else round(float(np.median(refusal_ms)), 1),
            "max": None if not refusal_ms else round(max(refusal_ms), 1),
        },
        "extras_completed": sum(r.error is None for r in extras),
        "clean": clean,
        "processes": processes,
        "session_results": [asdict(r) for r in [*kept, *extras]],
    }
