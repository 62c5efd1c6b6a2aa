"""``python -m load``: the command line of the load tool."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from .clips import DEFAULT_SET, speech_set
from .config import RAMP_LEVELS, Criteria, LoadConfig
from .ramp import run_load
from .report import to_markdown, write_reports
from .soak import DEFAULT_LEVELS, SoakConfig, run_soak
from .soak_figures import Tolerance
from .soak_report import soak_summary, write_soak_reports

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
    p.add_argument(
        "--levels", type=_ints, help="e.g. 1,2,4,8 (default 1,2,3,4,6,8; soak: 2,4,...,12,...,2)"
    )
    p.add_argument("--stagger", type=float, default=1.0, help="seconds between user starts")
    p.add_argument("--clips-per-session", type=int, default=2)
    p.add_argument(
        "--speech", type=Path, help="folder of speech sets (default: $ASR_SPEECH_FIXTURES)"
    )
    p.add_argument("--clips", type=Path, help=f"speech set (default: SPEECH/{DEFAULT_SET})")
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
    soak = p.add_argument_group(
        "soak (--soak)",
        "ramp WebSocket sessions past capacity and back through asr serve and asr "
        "riva-local, kill Riva once, account for every session and second of audio, check "
        "the servers return to their baseline; writes soak.json and soak.md to --out",
    )
    soak.add_argument("--soak", action="store_true", help="run the soak instead of the ramp")
    soak.add_argument("--duration", type=float, default=240.0, help="seconds of the schedule")
    soak.add_argument(
        "--kill-riva-at", type=float, help="seconds into the schedule (default: half-way)"
    )
    soak.add_argument("--no-kill", action="store_true", help="do not kill Riva")
    soak.add_argument("--riva-max-streams", type=int, default=8)
    soak.add_argument("--gateway-max-sessions", type=int, default=10)
    soak.add_argument(
        "--retry-after", type=float, default=1.0, help="a user's wait after a refusal"
    )
    soak.add_argument("--settle", type=float, default=30.0, help="longest wait for the baseline")
    soak.add_argument("--rss-tolerance-mb", type=float, default=32.0)
    soak.add_argument("--fd-tolerance", type=int, default=4)
    soak.add_argument("--thread-tolerance", type=int, default=2)
    return p


def _soak_config(args: argparse.Namespace) -> SoakConfig:
    return SoakConfig(
        clips_dir=speech_set(args.clips, args.speech),
        levels=args.levels or DEFAULT_LEVELS,
        duration_seconds=args.duration,
        kill_riva=not args.no_kill,
        kill_riva_at=args.kill_riva_at,
        riva_max_streams=args.riva_max_streams,
        gateway_max_sessions=args.gateway_max_sessions,
        max_clip_seconds=args.max_clip_seconds,
        retry_after_seconds=args.retry_after,
        slack_seconds=args.slack,
        settle_seconds=args.settle,
        tolerance=Tolerance(
            rss_mb=args.rss_tolerance_mb, fds=args.fd_tolerance, threads=args.thread_tolerance
        ),
    )


def _load_config(args: argparse.Namespace) -> LoadConfig:
    return LoadConfig(
        clips_dir=speech_set(args.clips, args.speech),
        modes=("websocket", "grpc") if args.mode == "both" else (args.mode,),
        levels=args.levels or RAMP_LEVELS,
        stagger_seconds=args.stagger,
        clips_per_session=args.clips_per_session,
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


def main(argv: list[str] | None = None) -> int:
    """Run the load tool (or the soak with ``--soak``); 0 when it ran, 2 on a bad target,
    bad options, missing speech sets or a server that did not start."""
    args = _parser().parse_args(argv)

    def progress(line: str) -> None:
        if not args.quiet:
            print(line, file=sys.stderr, flush=True)

    try:
        if args.soak:
            report = asyncio.run(run_soak(_soak_config(args), progress))
        else:
            report = asyncio.run(run_load(_load_config(args), progress))
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"load: {exc}", file=sys.stderr)
        return 2
    write = write_soak_reports if args.soak else write_reports
    for path in write(report, args.out):
        print(f"wrote {path}", file=sys.stderr)
    if args.soak:
        print(soak_summary(report))
    elif not args.quiet:
        print(to_markdown(report))
    return 0
