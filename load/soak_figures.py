"""The soak's figures from its records: plain functions, no I/O, no clock.

* :func:`schedule` turns levels and a duration into timed steps labelled ``up``, ``peak``
  and ``down``.
* :func:`account_sessions` puts every session in exactly one of completed / refused at the
  door / failed after admission, and splits the failures by code and by when they came:
  overlapping the Riva outage (open at some time between the kill and the restarted
  server's readiness), after Riva was back but before the gateway recovered (before the
  first session opened after the restart that completed began), or outside both; of the
  last, how many failed while more sessions were admitted than Riva takes streams.
* :func:`account_audio` sets audio sent by admitted sessions against audio recognised,
  measured two ways: the summed spans of the finals (``end - start``, first to last word;
  pauses between utterances and silence at the ends are not in it, so even a clean run is
  below 1) and reference words recognised (alignment hits against the clip's reference,
  whose word count is prorated by the share of the clip sent when a session was cut off).
* :func:`compare_resources` checks each reading after the soak against its baseline.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

import jiwer

from asr.wer import normalize

from .soak_session import SoakSession

__all__ = [
    "Outage",
    "Step",
    "Tolerance",
    "account_audio",
    "account_sessions",
    "with_recovery",
    "audio_by_phase",
    "compare_resources",
    "resources_report",
    "schedule",
    "word_counts",
]


@dataclass(frozen=True, slots=True)
class Step:
    """One stretch of the schedule at a fixed number of concurrent users."""

    index: int
    level: int
    start: float
    end: float
    phase: str


def schedule(levels: Sequence[int], duration: float) -> list[Step]:
    """Equal steps over ``duration`` seconds; ``peak`` is every step at the highest level,
    ``up`` the steps before the first of them, ``down`` the steps after the last."""
    if not levels or duration <= 0:
        raise ValueError("a schedule needs levels and a positive duration")
    top = max(levels)
    first = levels.index(top)
    last = len(levels) - 1 - list(reversed(levels)).index(top)
    each = duration / len(levels)
    steps = []
    for i, level in enumerate(levels):
        phase = "up" if i < first else "peak" if i <= last else "down"
        steps.append(Step(i, level, round(i * each, 3), round((i + 1) * each, 3), phase))
    return steps


@dataclass(frozen=True, slots=True)
class Outage:
    """The Riva outage: from the SIGKILL to the restarted server's readiness line, and the
    gateway's recovery after it.

    Attributes:
        killed: Seconds since the soak began.
        ready: When the new server was listening; ``None`` if it never came back.
        recovered: When the first session opened after ``ready`` that went on to complete
            began; until then the gateway may still be failing sessions (reconnecting,
            circuit breaker open). ``None`` when no such session ran.
    """

    killed: float
    ready: float | None
    recovered: float | None = None

    def overlaps(self, session: SoakSession) -> bool:
        """Whether the session was open at any time during the outage."""
        end = float("inf") if self.ready is None else self.ready
        return session.opened <= end and session.closed >= self.killed

    def in_recovery(self, session: SoakSession) -> bool:
        """Whether the session ended after Riva was back but before the gateway recovered
        (and did not overlap the outage itself)."""
        if self.ready is None or self.overlaps(session):
            return False
        end = float("inf") if self.recovered is None else self.recovered
        return self.ready <= session.closed <= end


def with_recovery(outage: Outage | None, sessions: Sequence[SoakSession]) -> Outage | None:
    """``outage`` with :attr:`Outage.recovered` measured from the sessions."""
    if outage is None or outage.ready is None:
        return outage
    ready = outage.ready
    began = [
        s.began
        for s in sessions
        if s.outcome == "completed" and s.began is not None and s.opened >= ready
    ]
    return Outage(outage.killed, outage.ready, min(began) if began else None)


def _codes(sessions: Iterable[SoakSession]) -> dict[str, int]:
    return dict(sorted(Counter(str(s.code) for s in sessions).items()))


def account_sessions(
    sessions: Sequence[SoakSession], outage: Outage | None, riva_max_streams: int
) -> dict[str, Any]:
    """Every session counted once: completed, refused at the door, failed after admission."""
    by = {o: [s for s in sessions if s.outcome == o] for o in ("completed", "refused", "failed")}
    failed = by["failed"]
    during = [s for s in failed if outage is not None and outage.overlaps(s)]
    recovering = [s for s in failed if outage is not None and outage.in_recovery(s)]
    seen = {s.index for s in [*during, *recovering]}
    outside = [s for s in failed if s.index not in seen]
    over = [s for s in outside if s.admitted_in_flight > riva_max_streams]
    return {
        "sessions": len(sessions),
        "completed": len(by["completed"]),
        "refused_at_door": len(by["refused"]),
        "refused_codes": _codes(by["refused"]),
        "failed_after_begin": len(failed),
        "failed_codes": _codes(failed),
        "failed_overlapping_outage": len(during),
        "failed_overlapping_outage_codes": _codes(during),
        "failed_after_restart_before_recovery": len(recovering),
        "failed_after_restart_before_recovery_codes": _codes(recovering),
        "failed_outside_outage": len(outside),
        "failed_outside_outage_codes": _codes(outside),
        # More admitted sessions than Riva takes streams: a refusal Riva had to make.
        "failed_outside_outage_with_more_admitted_than_riva_streams": len(over),
        "failed_without_code": sum(s.code is None for s in [*failed, *by["refused"]]),
        "accounted": sum(len(v) for v in by.values()) == len(sessions),
        "admitted": len(by["completed"]) + len(failed),
    }


@cache
def _words(text: str) -> tuple[str, ...]:
    return tuple(normalize(text).split())


def word_counts(reference: str, transcript: str) -> tuple[int, int]:
    """Words of ``reference`` and how many of them ``transcript`` got right (alignment
    hits, both normalised with the Whisper English normaliser)."""
    ref = _words(reference)
    hyp = _words(transcript)
    if not ref or not hyp:
        return len(ref), 0
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    return len(ref), int(out.hits)


def account_audio(sessions: Iterable[SoakSession]) -> dict[str, Any]:
    """Audio and words in versus recognised, over the admitted sessions given."""
    admitted = [s for s in sessions if s.began is not None]
    sent = sum(s.audio_sent_seconds for s in admitted)
    span = sum(s.final_span_seconds for s in admitted)
    ref_words = 0.0
    hits = 0
    for s in admitted:
        n, h = word_counts(s.reference, s.transcript)
        share = min(1.0, s.audio_sent_seconds / s.clip_seconds) if s.clip_seconds else 0.0
        ref_words += n * share
        hits += h
    return {
        "admitted_sessions": len(admitted),
        "audio_sent_seconds": round(sent, 1),
        "final_span_seconds": round(span, 1),
        "span_per_audio_second": round(span / sent, 3) if sent else None,
        "reference_words_sent": round(ref_words, 1),
        "words_recognised": hits,
        "word_recall": round(hits / ref_words, 3) if ref_words else None,
    }


@dataclass(frozen=True, slots=True)
class Tolerance:
    """How far a reading after the soak may sit above its baseline and still count as back.

    Attributes:
        rss_mb: Resident memory (CPython rarely hands freed memory back to the OS).
        fds: Open file descriptors.
        threads: Threads (``/proc/PID/task``).
    """

    rss_mb: float = 32.0
    fds: int = 4
    threads: int = 2

    def allowed(self, metric: str) -> float:
        return {"rss_mb": self.rss_mb, "fds": self.fds, "threads": self.threads}[metric]


def compare_resources(
    before: Mapping[str, float] | None, after: Mapping[str, float] | None, tolerance: Tolerance
) -> dict[str, Any]:
    """Per metric: before, after, the change and whether it is within the tolerance."""
    if before is None or after is None:
        return {"measured": False, "within": False}
    out: dict[str, Any] = {"measured": True}
    within = True
    for metric in ("rss_mb", "fds", "threads"):
        delta = after[metric] - before[metric]
        ok = delta <= tolerance.allowed(metric)
        within = within and ok
        out[metric] = {
            "before": before[metric],
            "after": after[metric],
            "delta": round(delta, 1),
            "tolerance": tolerance.allowed(metric),
            "within": ok,
        }
    out["within"] = within
    return out


def resources_report(
    baseline: Mapping[str, Mapping[str, float] | None],
    after: Mapping[str, Mapping[str, float] | None],
    tolerance: Tolerance,
) -> dict[str, Any]:
    """Per server (``gateway``, ``riva``): its readings before and after, and the check."""
    out: dict[str, Any] = {}
    for name in ("gateway", "riva"):
        before, now = baseline.get(name), after.get(name)
        out[name] = {
            "before": before,
            "after": now,
            # After a restart Riva's "after" is another process than its baseline.
            "same_process": before is not None
            and now is not None
            and before.get("pid") == now.get("pid"),
            "comparison": compare_resources(before, now, tolerance),
        }
    return out


def audio_by_phase(
    sessions: list[SoakSession], steps: list[Step], outage: Outage | None, riva_streams: int
) -> dict[str, Any]:
    """Audio accounting overall, per phase, per step, and for the sessions the outage hit
    (open during it, or ended after Riva was back but before the gateway recovered)."""
    phases = {
        phase: account_audio(s for s in sessions if steps[s.step].phase == phase)
        for phase in ("up", "peak", "down")
    }
    per_step = [
        {"step": st.index, "level": st.level, "phase": st.phase}
        | account_audio(s for s in sessions if s.step == st.index)
        | account_sessions([s for s in sessions if s.step == st.index], outage, riva_streams)
        for st in steps
    ]
    hit = [
        s for s in sessions if outage is not None and (outage.overlaps(s) or outage.in_recovery(s))
    ]
    hit_ids = {s.index for s in hit}
    return {
        "measure": (
            "audio_sent_seconds: audio of admitted sessions handed to the socket; "
            "final_span_seconds: sum over finals of end - start (first to last word); "
            "word_recall: reference words recognised (alignment hits) / reference words "
            "of the audio sent (prorated for sessions cut off)"
        ),
        "overall": account_audio(sessions),
        "phases": phases,
        "steps": per_step,
        # Open during the outage, or ended between Riva's return and the gateway's recovery.
        "outage_or_recovery": account_audio(hit),
        "neither": account_audio(s for s in sessions if s.index not in hit_ids),
    }
