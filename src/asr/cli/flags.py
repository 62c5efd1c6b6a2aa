"""Command-line flags shared by the commands, and what they turn into.

Flags follow NVIDIA's Riva client scripts where they overlap (``--server``, ``--use-ssl``,
``--ssl-root-cert``, ``--metadata KEY VALUE``, ``--language-code``,
``--automatic-punctuation``, ``--word-time-offsets``, the endpointing flags). Connection
flags override the ``RIVA_*`` environment variables. A recognition flag that is not given
leaves the setting to the server (``None``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..audio import TARGET_SAMPLE_RATE
from ..options import EndpointingConfig, RecognitionOptions
from ..settings import RivaSettings, with_overrides

__all__ = [
    "connection_flags",
    "options_from",
    "recognition_flags",
    "server_given",
    "settings_from",
]


def connection_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("connection (overrides RIVA_* variables)")
    group.add_argument(
        "--server",
        help="Riva endpoint host[:port], port 50051 when omitted; https://host[:port] "
        "means TLS (RIVA_URI)",
    )
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


def settings_from(args: argparse.Namespace, **overrides: Any) -> RivaSettings:
    """``RIVA_*`` settings with the connection flags (and ``overrides``) applied on top."""
    for flag, field in (
        ("server", "uri"),
        ("use_ssl", "use_ssl"),
        ("ssl_root_cert", "ssl_root_cert"),
        ("ssl_client_cert", "ssl_client_cert"),
        ("ssl_client_key", "ssl_client_key"),
        ("timeout", "timeout"),
    ):
        if getattr(args, flag, None) is not None:
            overrides.setdefault(field, getattr(args, flag))
    if getattr(args, "metadata", None):
        overrides["metadata"] = [tuple(pair) for pair in args.metadata]
    return with_overrides(RivaSettings(), **overrides)


def server_given(args: argparse.Namespace) -> bool:
    """Whether the user named a Riva endpoint, with ``--server`` or ``RIVA_URI``."""
    return args.server is not None or "uri" in RivaSettings().model_fields_set


def recognition_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("recognition (server defaults when not given)")
    group.add_argument("--language-code", default="en-US")
    group.add_argument("--model-name", help="server model to use (see `asr models`)")
    group.add_argument(
        "--automatic-punctuation",
        action="store_true",
        default=None,
        help="punctuate and capitalise the transcript",
    )
    group.add_argument(
        "--no-verbatim-transcripts",
        dest="verbatim_transcripts",
        action="store_false",
        default=None,
        help="apply inverse text normalisation",
    )
    group.add_argument(
        "--word-time-offsets", action="store_true", default=None, help="return word times"
    )
    group.add_argument("--profanity-filter", action="store_true", default=None)
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


def options_from(args: argparse.Namespace) -> RecognitionOptions:
    """The recognition options the flags ask for; what is not given stays ``None``."""
    endpointing = {
        name: getattr(args, name)
        for name in EndpointingConfig.model_fields
        if getattr(args, name) is not None
    }
    custom = []
    for pair in filter(None, args.custom_configuration.replace(" ", "").split(",")):
        key, sep, value = pair.partition(":")
        if not sep:
            raise SystemExit(f"asr: --custom-configuration: {pair!r} is not key:value")
        custom.append((key, value))
    return RecognitionOptions(
        language_code=args.language_code,
        model=args.model_name,
        sample_rate_hz=TARGET_SAMPLE_RATE,
        automatic_punctuation=args.automatic_punctuation,
        verbatim_transcripts=args.verbatim_transcripts,
        word_time_offsets=args.word_time_offsets,
        profanity_filter=args.profanity_filter,
        max_alternatives=args.max_alternatives,
        boosted_words=tuple(args.boosted_lm_words),
        boosted_score=args.boosted_lm_score,
        endpointing=EndpointingConfig(**endpointing) if endpointing else None,
        custom_configuration=tuple(custom),
        interim_results=not args.no_interim_results,
    )
