"""The ``asr`` command line.

Flags follow NVIDIA's Riva client scripts where they overlap (``--server``,
``--use-ssl``, ``--ssl-root-cert``, ``--metadata KEY VALUE``, ``--language-code``,
``--automatic-punctuation``, ``--word-time-offsets``, the endpointing flags). Connection
flags override the ``RIVA_*`` environment variables.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

from .audio import TARGET_SAMPLE_RATE, chunk_bytes, load_pcm16, paced
from .client import RivaASRClient
from .errors import ASRError
from .events import Final, Partial
from .options import EndpointingConfig, RecognitionOptions
from .settings import RivaSettings

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]


def _connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (overrides RIVA_* variables)")
    group.add_argument("--server", help="Riva endpoint host:port (RIVA_URI)")
    group.add_argument(
        "--use-ssl",
        action="store_true",
        default=None,
        help="use TLS with the system's root certificates (RIVA_USE_SSL)",
    )
    group.add_argument("--ssl-root-cert", type=Path, help="CA certificate PEM (RIVA_SSL_ROOT_CERT)")
    group.add_argument("--ssl-client-cert", type=Path, help="client certificate PEM for mTLS")
    group.add_argument("--ssl-client-key", type=Path, help="client private key PEM for mTLS")
    group.add_argument(
        "--metadata",
        nargs=2,
        action="append",
        metavar=("KEY", "VALUE"),
        help="call metadata, repeatable, e.g. --metadata function-id ID "
        "--metadata authorization 'Bearer KEY'",
    )
    group.add_argument("--timeout", type=float, help="deadline of unary calls in seconds")


def _settings(args: argparse.Namespace) -> RivaSettings:
    overrides: dict[str, Any] = {}
    for flag, field in (
        ("server", "uri"),
        ("use_ssl", "use_ssl"),
        ("ssl_root_cert", "ssl_root_cert"),
        ("ssl_client_cert", "ssl_client_cert"),
        ("ssl_client_key", "ssl_client_key"),
        ("timeout", "timeout"),
    ):
        if getattr(args, flag, None) is not None:
            overrides[field] = getattr(args, flag)
    if args.metadata:
        overrides["metadata"] = [tuple(pair) for pair in args.metadata]
    base = RivaSettings()
    return RivaSettings.model_validate(base.model_dump() | overrides) if overrides else base


def _recognition_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recognition")
    group.add_argument("--language-code", default="en-US")
    group.add_argument("--model-name", help="server model to use (see `asr models`)")
    group.add_argument(
        "--automatic-punctuation",
        action="store_true",
        help="punctuate and capitalise the transcript",
    )
    group.add_argument(
        "--no-verbatim-transcripts", action="store_true", help="apply inverse text normalisation"
    )
    group.add_argument(
        "--word-time-offsets", action="store_true", help="return word start/end times"
    )
    group.add_argument("--profanity-filter", action="store_true")
    group.add_argument("--max-alternatives", type=int)
    group.add_argument(
        "--boosted-lm-words",
        action="append",
        default=[],
        help="word or phrase to favour; repeatable",
    )
    group.add_argument("--boosted-lm-score", type=float)
    group.add_argument("--no-interim-results", action="store_true", help="finals only (streaming)")
    group.add_argument(
        "--custom-configuration", default="", help="key:value pairs separated by commas"
    )
    endpointing = parser.add_argument_group("endpointing (milliseconds and fractions)")
    for name, kind in (
        ("start-history", int),
        ("start-threshold", float),
        ("stop-history", int),
        ("stop-threshold", float),
        ("stop-history-eou", int),
        ("stop-threshold-eou", float),
    ):
        endpointing.add_argument(f"--{name}", type=kind)


def _options(args: argparse.Namespace) -> RecognitionOptions:
    endpointing = {
        name: getattr(args, name)
        for name in EndpointingConfig.model_fields
        if getattr(args, name) is not None
    }
    custom = []
    for pair in filter(None, args.custom_configuration.replace(" ", "").split(",")):
        key, sep, value = pair.partition(":")
        if not sep:
            raise SystemExit(f"--custom-configuration: {pair!r} is not key:value")
        custom.append((key, value))
    return RecognitionOptions(
        language_code=args.language_code,
        model=args.model_name,
        sample_rate_hz=TARGET_SAMPLE_RATE,
        automatic_punctuation=args.automatic_punctuation,
        verbatim_transcripts=not args.no_verbatim_transcripts,
        word_time_offsets=args.word_time_offsets or None,
        profanity_filter=args.profanity_filter or None,
        max_alternatives=args.max_alternatives,
        boosted_words=tuple(args.boosted_lm_words),
        boosted_score=args.boosted_lm_score,
        endpointing=EndpointingConfig(**endpointing) if endpointing else None,
        custom_configuration=tuple(custom),
        interim_results=not args.no_interim_results,
    )


class _Printer:
    """Shows partials on one line that is rewritten, and finals on lines of their own."""

    def __init__(self, out: TextIO, *, json_lines: bool, words: bool) -> None:
        self.out = out
        self.json_lines = json_lines
        self.words = words
        self.tty = out.isatty()
        self._partial_shown = False

    def event(self, event: Partial | Final) -> None:
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


async def _transcribe(args: argparse.Namespace) -> int:
    options = _options(args)
    pcm = load_pcm16(args.file, TARGET_SAMPLE_RATE)
    printer = _Printer(sys.stdout, json_lines=args.json, words=args.word_time_offsets)
    async with RivaASRClient(_settings(args)) as client:
        if args.offline:
            for final in await client.recognize(pcm, options):
                printer.event(final)
            return 0
        chunks = chunk_bytes(pcm, args.chunk_ms, TARGET_SAMPLE_RATE)
        audio = paced(chunks, TARGET_SAMPLE_RATE * 2) if args.realtime else chunks
        async for event in client.stream(audio, options):
            printer.event(event)
    return 0


async def _models(args: argparse.Namespace) -> int:
    async with RivaASRClient(_settings(args)) as client:
        models = await client.list_models()
    for model in models:
        if args.json:
            print(model.model_dump_json())
        else:
            params = ", ".join(f"{k}={v}" for k, v in sorted(model.parameters.items()))
            print(f"{model.name}\n  {params}")
    return 0


async def _health(args: argparse.Namespace) -> int:
    async with RivaASRClient(_settings(args)) as client:
        healthy = await client.health()
    print("SERVING" if healthy else "NOT SERVING")
    return 0 if healthy else 1


def _noise(spec: str) -> tuple[str, float]:
    kind, _, snr = spec.partition(":")
    if kind not in ("white", "pink") or not snr:
        raise argparse.ArgumentTypeError(f"{spec!r}: use white:SNR_DB or pink:SNR_DB")
    return kind, float(snr)


async def _wer(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .evaluation import GrpcTransport, Transport, load_corpus, mix_noise, run_set
    from .evaluation import golden as goldens
    from .evaluation.report import summary, write_reports
    from .evaluation.websocket import websocket_transport

    results = []
    failed = False
    async with RivaASRClient(_settings(args)) as client:
        if args.transport == "websocket" and not args.ws_url:
            raise SystemExit("asr wer: --transport websocket needs --ws-url")
        transport: Transport = (
            websocket_transport(args.ws_url)
            if args.transport == "websocket"
            else GrpcTransport(client)
        )
        for folder in args.sets:
            clips = load_corpus(folder)[: args.limit]
            condition, transform = "clean", None
            if args.noise:
                kind, snr = args.noise
                condition = f"{kind}@{snr:g}dB"

                def transform(samples, index, kind=kind, snr=snr):  # type: ignore[no-untyped-def]
                    return mix_noise(samples, snr, kind, seed=index)

            with tqdm(total=len(clips), desc=folder.name, unit="clip", disable=args.quiet) as bar:
                result = await run_set(
                    transport,
                    clips,
                    name=folder.name,
                    realtime=args.realtime,
                    condition=condition,
                    transform=transform,
                    options=_options(args),
                    progress=lambda _: bar.update(),
                )
            results.append(result)
            print(json.dumps(summary(result)))
            if args.golden:
                problems = goldens.check(result, goldens.load(args.golden))
                for problem in problems:
                    print(f"REGRESSION {problem}", file=sys.stderr)
                failed |= bool(problems)
            if args.write_golden:
                args.write_golden.write_text(json.dumps(goldens.make(result), indent=2) + "\n")
    for path in write_reports(results, args.out):
        print(f"wrote {path}", file=sys.stderr)
    return 1 if failed else 0


def _riva_local(args: argparse.Namespace) -> int:
    from .embedded.server import ServerTLS, run

    if (args.ssl_cert is None) != (args.ssl_key is None):
        raise SystemExit("asr riva-local: --ssl-cert and --ssl-key go together")
    if args.ssl_client_ca is not None and args.ssl_cert is None:
        raise SystemExit("asr riva-local: --ssl-client-ca needs --ssl-cert and --ssl-key")
    tls = None
    if args.ssl_cert is not None:
        tls = ServerTLS(args.ssl_cert, args.ssl_key, args.ssl_client_ca)
    run(
        host=args.host,
        port=args.port,
        max_streams=args.max_streams,
        tls=tls,
        on_ready=lambda address: print(f"asr riva-local: serving on {address}", flush=True),
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    from asr_server.app import run as serve
    from asr_server.settings import ServerSettings

    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "cert", "key")
        if getattr(args, name) is not None
    }
    base = ServerSettings()
    settings = ServerSettings.model_validate(base.model_dump() | overrides) if overrides else base
    serve(
        settings,
        _settings(args),
        on_ready=lambda gateway: print(
            f"asr serve: demo page and API on {gateway.base_url} (Riva at {_settings(args).uri})",
            flush=True,
        ),
    )
    return 0


def _make_cert(args: argparse.Namespace) -> int:
    from asr_server.certs import write_self_signed

    cert, key = write_self_signed(
        args.directory, hostnames=tuple(args.hostname), overwrite=args.overwrite
    )
    print(f"certificate {cert}\nprivate key {key}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="asr", description=__doc__.splitlines()[0])
    parser.add_argument("--log-level", default="WARNING", help="DEBUG, INFO, WARNING, ERROR")
    commands = parser.add_subparsers(dest="command", required=True)

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
    _connection_flags(transcribe)
    _recognition_flags(transcribe)
    transcribe.set_defaults(run=lambda a: asyncio.run(_transcribe(a)))

    models = commands.add_parser("models", help="list the server's ASR models")
    models.add_argument("--json", action="store_true")
    _connection_flags(models)
    models.set_defaults(run=lambda a: asyncio.run(_models(a)))

    health = commands.add_parser("health", help="check the server's gRPC health")
    _connection_flags(health)
    health.set_defaults(run=lambda a: asyncio.run(_health(a)))

    wer = commands.add_parser(
        "wer", help="stream speech sets and report WER and latency (golden runner)"
    )
    wer.add_argument(
        "sets",
        nargs="+",
        type=Path,
        help="folders with audio and refs.jsonl, e.g. ../shared/fixtures/speech/jfk",
    )
    wer.add_argument("--realtime", action="store_true", help="pace audio at real time")
    wer.add_argument("--noise", type=_noise, help="mix noise in: white:SNR_DB or pink:SNR_DB")
    wer.add_argument("--limit", type=int, help="only the first N clips of each set")
    wer.add_argument(
        "--out",
        type=Path,
        default=Path("reports"),
        help="folder for wer.json, wer.md and wer-latency.png",
    )
    wer.add_argument(
        "--golden", type=Path, help="golden file to check against; exit 1 on regression"
    )
    wer.add_argument("--write-golden", type=Path, help="write a golden file from this run")
    wer.add_argument("--quiet", action="store_true", help="no progress bar")
    wer.add_argument(
        "--transport",
        choices=("grpc", "websocket"),
        default="grpc",
        help="straight to Riva over gRPC, or through the WebSocket server at --ws-url",
    )
    wer.add_argument(
        "--ws-url", help="the WebSocket server's stream URL, ws://HOST:PORT/v1/audio/..."
    )
    _connection_flags(wer)
    _recognition_flags(wer)
    wer.set_defaults(run=lambda a: asyncio.run(_wer(a)))

    serve = commands.add_parser(
        "serve", help="serve the WebSocket API and demo page (settings: ASR_SERVER_*)"
    )
    serve.add_argument("--host", help="interface to bind (ASR_SERVER_HOST)")
    serve.add_argument("--port", type=int, help="port; 0 picks a free one (ASR_SERVER_PORT)")
    serve.add_argument("--cert", type=Path, help="TLS certificate PEM (ASR_SERVER_CERT)")
    serve.add_argument("--key", type=Path, help="TLS private key PEM (ASR_SERVER_KEY)")
    _connection_flags(serve)
    serve.set_defaults(run=_serve)

    cert = commands.add_parser("make-cert", help="make a self-signed certificate for local use")
    cert.add_argument("directory", type=Path, help="where server.pem and server.key go")
    cert.add_argument(
        "--hostname",
        action="append",
        default=["localhost"],
        help="DNS name the certificate covers; repeatable",
    )
    cert.add_argument("--overwrite", action="store_true", help="replace existing files")
    cert.set_defaults(run=_make_cert)

    local = commands.add_parser(
        "riva-local", help="serve the embedded Riva-compatible ASR server on CPU"
    )
    local.add_argument("--host", default="127.0.0.1")
    local.add_argument("--port", type=int, default=50051, help="0 picks a free port")
    local.add_argument("--max-streams", type=int, default=8)
    local.add_argument("--ssl-cert", type=Path, help="serve TLS with this PEM certificate")
    local.add_argument("--ssl-key", type=Path, help="PEM private key of --ssl-cert")
    local.add_argument(
        "--ssl-client-ca",
        type=Path,
        help="require client certificates signed by this CA (mutual TLS)",
    )
    local.set_defaults(run=_riva_local)
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
    except ASRError as exc:
        print(f"asr: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
