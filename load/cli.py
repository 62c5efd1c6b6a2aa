"""``python -m load``: the command line of the load tool."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .ramp import SPEECH, Criteria, LoadConfig, run_load
from .report import to_markdown, write_reports

__all__ = ["main"]


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: use e.g. 1,2,4,8") from exc
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: positive integers, e.g. 1,2,4,8")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m load",
        description="Ramp concurrent real-time sessions against the embedded Riva server "
        "(direct gRPC) and the WebSocket server; find where the engine stops keeping up "
        "and check the refusal past the limit. Starts its own servers on loopback.",
    )
    p.add_argument("--mode", choices=("websocket", "grpc", "both"), default="both")
    p.add_argument("--levels", type=_ints, default=(1, 2, 3, 4, 6, 8), help="e.g. 1,2,4,8")
    p.add_argument("--stagger", type=float, default=1.0, help="seconds between user starts")
    p.add_argument("--clips-per-session", type=int, default=2)
    p.add_argument("--clips", type=Path, default=SPEECH / "librispeech_mini", help="speech set")
    p.add_argument("--max-clip-seconds", type=float, default=12.0)
    p.add_argument("--max-final-p95-ms", type=float, default=2500.0)
    p.add_argument("--max-error-rate", type=float, default=0.0)
    p.add_argument("--max-first-partial-p95-ms", type=float, help="also bound partials")
    p.add_argument("--levels-past-capacity", type=int, default=0)
    p.add_argument("--max-seconds", type=float, default=900.0, help="budget of the ramp")
    p.add_argument("--slack", type=float, default=30.0, help="session timeout beyond its clip")
    p.add_argument("--no-overload", action="store_true", help="skip the overload probe")
    p.add_argument("--overload-limit", type=int, help="limit for the probe (default: capacity)")
    p.add_argument("--overload-extra", type=int, default=2)
    p.add_argument("--riva", help="use this Riva server (HOST:PORT) instead of starting one")
    p.add_argument("--ws-url", help="use this WebSocket server instead of starting one")
    p.add_argument("--allow-remote", action="store_true", help="accept non-loopback targets")
    p.add_argument("--out", type=Path, default=Path("reports/load"))
    p.add_argument("--quiet", action="store_true")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the load tool; 0 when it ran, 2 on a bad target or a server that did not start."""
    args = _parser().parse_args(argv)
    config = LoadConfig(
        modes=("websocket", "grpc") if args.mode == "both" else (args.mode,),
        levels=args.levels,
        stagger_seconds=args.stagger,
        clips_per_session=args.clips_per_session,
        clips_dir=args.clips,
        max_clip_seconds=args.max_clip_seconds,
        criteria=Criteria(
            max_final_p95_ms=args.max_final_p95_ms,
            max_error_rate=args.max_error_rate,
            max_first_partial_p95_ms=args.max_first_partial_p95_ms,
        ),
        levels_past_capacity=args.levels_past_capacity,
        max_seconds=args.max_seconds,
        slack_seconds=args.slack,
        overload=not args.no_overload,
        overload_limit=args.overload_limit,
        overload_extra=args.overload_extra,
        riva_uri=args.riva,
        ws_url=args.ws_url,
        allow_remote=args.allow_remote,
    )

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        report = asyncio.run(run_load(config, progress))
    except (ValueError, RuntimeError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    for path in write_reports(report, args.out):
        print(f"wrote {path}", file=sys.stderr)
    if not args.quiet:
        print(to_markdown(report))
    return 0
