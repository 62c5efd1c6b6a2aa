"""The ``asr`` command line.

``transcribe`` and ``wer`` use the embedded engine in-process when no Riva endpoint is
named (``--server`` or ``RIVA_URI``); ``models`` and ``health`` always ask an endpoint
(``localhost:50051`` by default, as NVIDIA's scripts do). Errors end in one line on stderr
that says what to try, and exit status 2.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ASRError
from ..extras import MissingExtraError
from . import client_commands, servers
from .flags import connection_flags, recognition_flags, settings_from
from .problems import describe
from .wer import noise_spec, wer

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _run(command: Callable[[argparse.Namespace], Coroutine[Any, Any, int]]) -> Handler:
    return lambda args: asyncio.run(command(args))


def _client_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    transcribe = commands.add_parser("transcribe", help="stream an audio file and print results")
    transcribe.add_argument("file", type=Path, help="WAV, FLAC or any file libsndfile reads")
    transcribe.add_argument(
        "--realtime",
        action="store_true",
        help="send audio no faster than real time, like a microphone",
    )
    transcribe.add_argument(
        "--offline", action="store_true", help="recognise the whole file at once (Recognize)"
    )
    transcribe.add_argument("--json", action="store_true", help="print one JSON event per line")
    transcribe.add_argument("--chunk-ms", type=int, default=100, help="audio per message")
    connection_flags(transcribe)
    recognition_flags(transcribe)
    transcribe.set_defaults(run=_run(client_commands.transcribe))

    models = commands.add_parser("models", help="list the server's ASR models")
    models.add_argument("--json", action="store_true")
    connection_flags(models)
    models.set_defaults(run=_run(client_commands.models))

    health = commands.add_parser("health", help="check the server's gRPC health")
    connection_flags(health)
    health.set_defaults(run=_run(client_commands.health))

    runner = commands.add_parser(
        "wer", help="stream speech sets and report WER and latency (golden runner)"
    )
    runner.add_argument(
        "sets", nargs="+", type=Path, help="folders with audio and refs.jsonl (one set each)"
    )
    runner.add_argument("--realtime", action="store_true", help="pace audio at real time")
    runner.add_argument(
        "--noise", type=noise_spec, help="mix noise in: white:SNR_DB or pink:SNR_DB"
    )
    runner.add_argument("--limit", type=int, help="only the first N clips of each set")
    runner.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder for wer.json, wer.md and wer-latency.png",
    )
    runner.add_argument(
        "--golden", type=Path, help="golden file to check against; exit 1 on regression"
    )
    runner.add_argument("--write-golden", type=Path, help="write a golden file from this run")
    runner.add_argument("--quiet", action="store_true", help="no progress bar")
    runner.add_argument(
        "--transport",
        choices=("grpc", "websocket"),
        default="grpc",
        help="straight to Riva over gRPC, or through the WebSocket server at --ws-url",
    )
    runner.add_argument(
        "--ws-url", help="the WebSocket server's stream URL, ws://HOST:PORT/v1/audio/..."
    )
    connection_flags(runner)
    recognition_flags(runner)
    runner.set_defaults(run=_run(wer))


def _server_parsers(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = commands.add_parser(
        "serve", help="serve the WebSocket API and demo page (settings: ASR_SERVER_*)"
    )
    serve.add_argument("--host", help="interface to bind (ASR_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port; 0 picks a free one (ASR_SERVER_PORT)")
    serve.add_argument("--cert", type=Path, help="TLS certificate PEM (ASR_SERVER_CERT)")
    serve.add_argument("--key", type=Path, help="TLS private key PEM (ASR_SERVER_KEY)")
    connection_flags(serve)
    serve.set_defaults(run=servers.serve)

    cert = commands.add_parser("make-cert", help="make a self-signed certificate for local use")
    cert.add_argument("directory", type=Path, help="where server.pem and server.key go")
    cert.add_argument(
        "--hostname",
        action="append",
        default=["localhost"],
        help="DNS name the certificate covers; repeatable",
    )
    cert.add_argument("--overwrite", action="store_true", help="replace existing files")
    cert.set_defaults(run=servers.make_cert)

    local = commands.add_parser(
        "riva-local", help="serve the embedded Riva-compatible ASR server on CPU"
    )
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    local.add_argument(
        "--max-streams",
        type=int,
        default=8,
        help="concurrent streams; more get RESOURCE_EXHAUSTED (default 8)",
    )
    local.add_argument(
        "--partial-interval-ms",
        type=int,
        # asr.embedded.policy.PARTIAL_INTERVAL_MS (not imported: a lean install has no
        # embedded extra).
        help="utterance audio between two interim results (default 960)",
    )
    local.add_argument(
        "--short-stop-history-ms",
        type=int,
        help="stop window while an utterance has under 4 s of speech and the request "
        "sets no stop_history; 0 turns it off (default 1500)",
    )
    local.add_argument(
        "--model-aliases",
        help="comma-separated model names that select the engine besides its own; "
        "empty for none (default: the NIM model names frameworks default to)",
    )
    local.add_argument("--ssl-cert", type=Path, help="serve TLS with this PEM certificate")
    local.add_argument("--ssl-key", type=Path, help="PEM private key of --ssl-cert")
    local.add_argument(
        "--ssl-client-ca",
        type=Path,
        help="require client certificates signed by this CA (mutual TLS)",
    )
    local.set_defaults(run=servers.riva_local)

    worker = commands.add_parser(
        "dynamo-worker",
        help="serve the embedded recogniser as an NVIDIA Dynamo endpoint (extra 'dynamo')",
    )
    worker.add_argument(
        "--endpoint",
        default="asr.recognizer.stream",
        help="namespace.component.endpoint to serve (default asr.recognizer.stream)",
    )
    worker.add_argument(
        "--discovery-backend",
        help="etcd, file, kubernetes or mem (default: DYN_DISCOVERY_BACKEND, else etcd)",
    )
    worker.add_argument(
        "--request-plane", help="tcp or nats (default: DYN_REQUEST_PLANE, else tcp)"
    )
    worker.add_argument("--max-streams", type=int, default=8, help="concurrent sessions")
    worker.set_defaults(run=servers.dynamo_worker)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True)
    _client_parsers(commands)
    _server_parsers(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``asr`` command; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    handler: Handler = args.run
    try:
        return handler(args)
    except (ASRError, OSError, ValidationError) as exc:
        settings = None
        if hasattr(args, "server") and not isinstance(exc, ValidationError):
            settings = settings_from(args)
        print(f"asr: {describe(exc, settings)}", file=sys.stderr)
        return 2
    except MissingExtraError as exc:
        print(f"asr {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
