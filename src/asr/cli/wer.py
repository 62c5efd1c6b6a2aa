"""``asr wer``: the golden WER runner on the command line.

Inputs are checked before any audio is sent: every set folder must hold ``refs.jsonl``,
and a ``--golden`` file must be for the one set and condition being run. The run ends
with a one-line verdict.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import numpy.typing as npt

from ..client import RivaASRClient
from .endpoint import riva_endpoint
from .flags import options_from

if TYPE_CHECKING:
    from ..evaluation import Transport
    from ..evaluation.corpus import Clip, NoiseKind

# The runner itself (asr.evaluation, the 'eval' extra) is imported when the command runs,
# so that `asr --help` and the other commands work on an install without it.

__all__ = ["noise_spec", "wer"]


def noise_spec(spec: str) -> tuple[NoiseKind, float]:
    """``white:SNR_DB`` or ``pink:SNR_DB`` as (kind, SNR)."""
    kind, _, snr = spec.partition(":")
    try:
        value = float(snr)
    except ValueError:
        value = float("nan")
    if kind not in ("white", "pink") or value != value:
        raise argparse.ArgumentTypeError(f"{spec!r}: use white:SNR_DB or pink:SNR_DB")
    return cast("NoiseKind", kind), value


def _condition(args: argparse.Namespace) -> str:
    if not args.noise:
        return "clean"
    kind, snr = args.noise
    return f"{kind}@{snr:g}dB"


def _load_sets(args: argparse.Namespace) -> list[tuple[Path, list[Clip]]]:
    from ..evaluation import load_corpus

    sets = []
    for folder in args.sets:
        if not (folder / "refs.jsonl").is_file():
            what = "no such folder" if not folder.is_dir() else "no refs.jsonl in it"
            raise SystemExit(f"asr wer: {folder}: {what} (a set is a folder of audio + refs.jsonl)")
        clips = load_corpus(folder)
        if not clips:
            raise SystemExit(f"asr wer: {folder}/refs.jsonl lists no clips")
        sets.append((folder, clips))
    return sets


def _load_golden(args: argparse.Namespace, sets: list[tuple[Path, list[Clip]]]) -> Any:
    if args.golden is None:
        return None
    if len(sets) != 1:
        raise SystemExit("asr wer: --golden judges one set; run one set at a time")
    from ..evaluation import golden as goldens

    try:
        golden = goldens.load(args.golden)
    except FileNotFoundError:
        raise SystemExit(f"asr wer: {args.golden}: no such golden file") from None
    except goldens.GoldenFileError as exc:
        raise SystemExit(f"asr wer: {exc}") from None
    folder, clips = sets[0]
    problem = goldens.mismatch(golden, folder.name, _condition(args), {c.id for c in clips})
    if problem:
        raise SystemExit(f"asr wer: {args.golden}: {problem}")
    return golden


@asynccontextmanager
async def _transport(args: argparse.Namespace) -> AsyncIterator[Transport]:
    if args.transport == "websocket":
        from ..evaluation.websocket import websocket_transport

        if not args.ws_url:
            raise SystemExit("asr wer: --transport websocket needs --ws-url")
        yield websocket_transport(args.ws_url)
        return
    from ..evaluation import GrpcTransport

    async with riva_endpoint(args) as settings, RivaASRClient(settings=settings) as client:
        yield GrpcTransport(client)


async def wer(args: argparse.Namespace) -> int:
    from ..evaluation import golden as goldens  # names the 'eval' extra if it is missing
    from ..evaluation import mix_noise, run_set
    from ..evaluation.report import summary, write_reports

    sets = _load_sets(args)
    golden = _load_golden(args, sets)
    if args.write_golden and len(sets) != 1:
        raise SystemExit("asr wer: --write-golden writes one set's file; run one set")
    options = options_from(args)
    condition = _condition(args)
    from tqdm import tqdm  # in the 'eval' extra, checked by the imports above

    results = []
    async with _transport(args) as transport:
        for folder, clips in sets:
            transform = None
            if args.noise:
                kind, snr = args.noise

                def transform(
                    samples: npt.NDArray[np.float32],
                    index: int,
                    kind: NoiseKind = kind,
                    snr: float = snr,
                ) -> npt.NDArray[np.float32]:
                    return mix_noise(samples, snr, kind, seed=index)

            selected = clips[: args.limit]
            bar = tqdm(total=len(selected), desc=folder.name, unit="clip", disable=args.quiet)
            with bar:
                result = await run_set(
                    transport,
                    selected,
                    name=folder.name,
                    realtime=args.realtime,
                    condition=condition,
                    transform=transform,
                    options=options,
                    progress=partial(_advance, bar),
                )
            results.append(result)
            print(json.dumps(summary(result)))
    for path in write_reports(results, args.out):
        print(f"wrote {path}", file=sys.stderr)
    if args.write_golden:
        args.write_golden.write_text(json.dumps(goldens.make(results[0]), indent=2) + "\n")
        print(f"wrote {args.write_golden}", file=sys.stderr)
    return _verdict(results, golden)


def _advance(bar: Any, _clip: object) -> None:
    bar.update()


def _verdict(results: list[Any], golden: Any) -> int:
    from ..evaluation import golden as goldens

    def figure(result: Any) -> str:
        wer = "no reference text" if result.wer is None else f"WER {result.wer:.2%}"
        errors = f", {result.errors} errors" if result.errors else ""
        return f"{result.name} ({result.condition}): {wer}{errors}"

    if golden is None:
        failed = any(r.errors for r in results)
        word = "FAIL" if failed else "done"
        print(f"asr wer: {word}: " + "; ".join(figure(r) for r in results), file=sys.stderr)
        return 1 if failed else 0
    problems = goldens.check(results[0], golden)
    for problem in problems:
        print(f"REGRESSION {problem}", file=sys.stderr)
    bound = f"golden set WER ≤ {golden['max_wer']:.0%}"
    if problems:
        print(
            f"asr wer: FAIL: {figure(results[0])}, {len(problems)} regressions against the "
            f"golden file ({bound})",
            file=sys.stderr,
        )
        return 1
    print(f"asr wer: PASS: {figure(results[0])} ({bound})", file=sys.stderr)
    return 0
