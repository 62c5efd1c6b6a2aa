"""``asr transcribe``, ``asr models`` and ``asr health``: the client side of the CLI."""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

from ..audio import TARGET_SAMPLE_RATE, chunk_bytes, load_pcm16, paced
from ..client import HealthStatus, RivaASRClient
from ..events import Final, Partial
from .endpoint import riva_endpoint
from .flags import options_from, settings_from

__all__ = ["health", "models", "transcribe"]


class _Printer:
    """Shows partials on one line that is rewritten, and finals on lines of their own."""

    def __init__(self, out: TextIO, *, json_lines: bool, words: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self.words = words
        self.tty = out.isatty()
        self._partial_shown = False
        self.finals = 0

    def event(self, event: Partial | Final) -> None:
        if isinstance(event, Final):
            self.finals += 1
        if self.json_lines:
            print(event.model_dump_json(), file=self.out, flush=True)
            return
        if isinstance(event, Partial):
            if self.tty:
                self.out.write(f"\r\x1b[2K\x1b[90m{event.text}\x1b[0m")
                self.out.flush()
                self._partial_shown = True
            return
        if self._partial_shown:
            self.out.write("\r\x1b[2K")
            self._partial_shown = False
        print(event.text, file=self.out, flush=True)
        if self.words:
            for w in event.words:
                confidence = f"  ({w.confidence:.2f})" if w.confidence is not None else ""
                print(
                    f"  {w.start_ms / 1000:8.2f} {w.end_ms / 1000:8.2f}  {w.word}{confidence}",
                    file=self.out,
                )


async def transcribe(args: argparse.Namespace) -> int:
    options = options_from(args)
    # Read before any server starts: a missing or unreadable file fails at once.
    pcm = load_pcm16(args.file, TARGET_SAMPLE_RATE)
    printer = _Printer(sys.stdout, json_lines=args.json, words=bool(args.word_time_offsets))
    async with riva_endpoint(args) as settings, RivaASRClient(settings=settings) as client:
        if args.offline:
            for final in await client.recognize(pcm, options):
                printer.event(final)
        else:
            chunks = chunk_bytes(pcm, args.chunk_ms, TARGET_SAMPLE_RATE)
            audio = paced(chunks, TARGET_SAMPLE_RATE * 2) if args.realtime else chunks
            async for event in client.stream(audio, options):
                printer.event(event)
    if not printer.finals:
        print(f"asr: no speech found in {args.file}", file=sys.stderr)
    return 0


async def models(args: argparse.Namespace) -> int:
    async with RivaASRClient(settings=settings_from(args)) as client:
        found = await client.list_models()
    for model in found:
        if args.json:
            print(model.model_dump_json())
        else:
            params = ", ".join(f"{k}={v}" for k, v in sorted(model.parameters.items()))
            print(f"{model.name}\n  {params}")
    return 0


async def health(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    async with RivaASRClient(settings=settings) as client:
        status = await client.health_status()
    hint = ""
    if status is HealthStatus.UNREACHABLE:
        hint = " (is a Riva server or asr riva-local running there?)"
    print(f"{settings.uri}: {status.value.upper()}{hint}")
    return 0 if status is HealthStatus.SERVING else 1
