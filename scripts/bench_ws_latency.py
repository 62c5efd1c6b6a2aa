"""End-of-speech to final latency: through the WebSocket server vs straight to Riva (gRPC).

Usage: PYTHONPATH=server python scripts/bench_ws_latency.py [--sets jfk,librispeech_mini]
       [--tail 0,2] [--riva HOST:PORT] [--json FILE]

Starts the embedded Riva-compatible server in a background thread (unless ``--riva`` is
given) and the WebSocket server on this event loop, then streams the same clips at real
time (100 ms chunks) both ways, one after another, with the golden-WER runner
(:func:`asr.evaluation.runner.run_set`). *Final latency* is the runner's: arrival of the
clip's last final minus the moment the audio holding its last word's end had been sent.
``--tail`` appends seconds of silence to every clip: with 0 the final comes from the
end-of-stream flush (the client's ``end``), with 2 from Riva's own endpointing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from websockets.asyncio.client import connect

from asr.client import RivaASRClient
from asr.embedded.server import EmbeddedServer
from asr.errors import ServerError, UnavailableError
from asr.evaluation.corpus import load_corpus
from asr.evaluation.runner import GrpcTransport, SetResult, percentile, run_set
from asr.events import Final, Partial, Word
from asr.options import RecognitionOptions
from asr.settings import RivaSettings
from asr_server.app import GatewayServer
from asr_server.messages import TranscriptFinal, TranscriptPartial, server_message_adapter
from asr_server.settings import ServerSettings

SPEECH = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "speech"


class WebSocketTransport:
    """The runner's transport through the WebSocket server: JSON messages back to events."""

    name = "websocket"

    def __init__(self, url: str) -> None:
        self.url = url

    async def stream(
        self, audio: AsyncIterator[bytes], options: RecognitionOptions
    ) -> AsyncIterator[Partial | Final]:
        query = "?word_timestamps=true" if options.word_time_offsets else ""
        async with connect(self.url + query) as ws:

            async def send() -> None:
                async for chunk in audio:
                    await ws.send(chunk)
                await ws.send(json.dumps({"type": "end"}))

            sender = asyncio.create_task(send())
            try:
                async for frame in ws:
                    message = server_message_adapter.validate_json(frame)
                    if isinstance(message, TranscriptPartial):
                        yield Partial(text=message.text, stability=message.stability)
                    elif isinstance(message, TranscriptFinal):
                        words = tuple(Word.model_validate(w.model_dump()) for w in message.words)
                        yield Final(text=message.text, confidence=message.confidence, words=words)
                    elif message.type == "error":
                        cls = UnavailableError if message.retryable else ServerError
                        raise cls(f"{message.code}: {message.message}")
            finally:
                sender.cancel()


class _RivaThread:
    """The embedded server on its own event loop, as a separate process would be."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EmbeddedServer(host="127.0.0.1", port=0)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(120)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(0.5), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def _tail(seconds: float) -> Any:
    silence = np.zeros(int(seconds * 16_000), dtype=np.float32)

    def transform(samples: npt.NDArray[np.float32], index: int) -> npt.NDArray[np.float32]:
        return np.concatenate([samples, silence])

    return transform if seconds else None


def _summary(result: SetResult) -> dict[str, Any]:
    finals = result.latencies("final_latency_ms")
    partials = result.latencies("first_partial_ms")
    return {
        "set": result.name,
        "transport": result.transport,
        "condition": result.condition,
        "clips": len(result.clips),
        "errors": result.errors,
        "wer": result.wer,
        "final_latency_ms": {
            "p50": percentile(finals, 50),
            "p90": percentile(finals, 90),
            "mean": float(np.mean(finals)) if finals else None,
        },
        "first_partial_ms_p50": percentile(partials, 50),
        "per_clip_final_latency_ms": [c.final_latency_ms for c in result.clips],
    }


async def measure(riva_uri: str, sets: list[str], tails: list[float]) -> list[dict[str, Any]]:
    """Run every set x tail x transport at real time; one summary per run."""
    summaries = []
    settings = ServerSettings(host="127.0.0.1", port=0, static_dir=None)
    async with (
        GatewayServer(settings, RivaSettings(uri=riva_uri)) as gateway,
        RivaASRClient(uri=riva_uri) as client,
    ):
        transports = [GrpcTransport(client), WebSocketTransport(gateway.url)]
        for name in sets:
            clips = load_corpus(SPEECH / name)
            for tail in tails:
                condition = f"tail {tail:g} s"
                # Alternate the transports clip by clip so drift in machine load hits both.
                per_transport: dict[str, list[SetResult]] = {t.name: [] for t in transports}
                for clip in clips:
                    for transport in transports:
                        result = await run_set(
                            transport,
                            [clip],
                            name=name,
                            realtime=True,
                            condition=condition,
                            transform=_tail(tail),
                        )
                        per_transport[transport.name].append(result)
                        c = result.clips[0]
                        print(
                            f"  {name:16} {condition:9} {transport.name:9} {c.id:22} "
                            f"final {c.final_latency_ms or float('nan'):7.0f} ms  "
                            f"wer {c.wer if c.wer is not None else float('nan'):.3f}",
                            file=sys.stderr,
                        )
                for transport_name, results in per_transport.items():
                    merged = SetResult(
                        name=name,
                        transport=transport_name,
                        condition=condition,
                        realtime=True,
                        clips=tuple(r.clips[0] for r in results),
                    )
                    summaries.append(_summary(merged))
    return summaries


def _table(summaries: list[dict[str, Any]]) -> str:
    lines = [
        "| set | condition | transport | clips | WER | final p50 ms | final p90 ms | "
        "final mean ms | first partial p50 ms |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def fmt(value: float | None, spec: str = ".0f") -> str:
        return "-" if value is None else format(value, spec)

    for s in summaries:
        f = s["final_latency_ms"]
        lines.append(
            f"| {s['set']} | {s['condition']} | {s['transport']} | {s['clips']} | "
            f"{fmt(s['wer'], '.3f')} | {fmt(f['p50'])} | {fmt(f['p90'])} | {fmt(f['mean'])} | "
            f"{fmt(s['first_partial_ms_p50'])} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="jfk,librispeech_mini")
    parser.add_argument("--tail", default="0,2", help="seconds of silence after each clip")
    parser.add_argument("--riva", help="use this Riva endpoint instead of an embedded server")
    parser.add_argument("--json", type=Path, help="also write the summaries here")
    args = parser.parse_args(argv)
    sets = [s for s in args.sets.split(",") if s]
    tails = [float(t) for t in args.tail.split(",") if t]
    riva = None if args.riva else _RivaThread()
    try:
        uri = args.riva or f"127.0.0.1:{riva.port}"  # type: ignore[union-attr]
        summaries = asyncio.run(measure(uri, sets, tails))
    finally:
        if riva is not None:
            riva.stop()
    print(_table(summaries))
    if args.json:
        args.json.write_text(json.dumps(summaries, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
