"""``asr riva-local``, ``asr serve`` and ``asr make-cert``: the server side of the CLI.

``serve`` needs the ``asr_server`` package; it is imported only when the command runs.
"""

from __future__ import annotations

import argparse

from ..settings import with_overrides
from .flags import settings_from

__all__ = ["dynamo_worker", "make_cert", "riva_local", "serve"]


def riva_local(args: argparse.Namespace) -> int:
    from ..embedded.endpointer import EndpointParams
    from ..embedded.server import ServerTLS, run

    if (args.ssl_cert is None) != (args.ssl_key is None):
        raise SystemExit("asr riva-local: --ssl-cert and --ssl-key go together")
    if args.ssl_client_ca is not None and args.ssl_cert is None:
        raise SystemExit("asr riva-local: --ssl-client-ca needs --ssl-cert and --ssl-key")
    tls = None
    if args.ssl_cert is not None:
        tls = ServerTLS(args.ssl_cert, args.ssl_key, args.ssl_client_ca)
    options: dict[str, object] = {}
    if args.model_aliases is not None:
        options["model_aliases"] = [n.strip() for n in args.model_aliases.split(",") if n.strip()]
    if args.partial_interval_ms is not None:
        options["partial_interval_ms"] = args.partial_interval_ms
    if args.short_stop_history_ms is not None:
        options["endpoint"] = EndpointParams(short_stop_history=args.short_stop_history_ms)
    run(
        host=args.host,
        port=args.port,
        max_streams=args.max_streams,
        tls=tls,
        on_ready=lambda address: print(f"asr riva-local: serving on {address}", flush=True),
        **options,
    )
    return 0


def dynamo_worker(args: argparse.Namespace) -> int:
    from ..dynamo.worker import run_worker  # asr.dynamo names the extra if it is missing

    run_worker(
        endpoint=args.endpoint,
        discovery_backend=args.discovery_backend,
        request_plane=args.request_plane,
        max_streams=args.max_streams,
        on_ready=lambda instance: print(
            f"asr dynamo-worker: serving {args.endpoint} as instance {instance:x}", flush=True
        ),
    )
    return 0


def serve(args: argparse.Namespace) -> int:
    from asr_server.app import run
    from asr_server.settings import ServerSettings

    overrides = {
        name: getattr(args, name)
        for name in ("host", "port", "cert", "key")
        if getattr(args, name) is not None
    }
    settings = with_overrides(ServerSettings(), **overrides)
    riva = settings_from(args)
    run(
        settings,
        riva,
        on_ready=lambda gateway: print(
            f"asr serve: demo page and API on {gateway.base_url} ({gateway.backend_label})",
            flush=True,
        ),
    )
    return 0


def make_cert(args: argparse.Namespace) -> int:
    from asr_server.certs import write_self_signed

    cert, key = write_self_signed(
        args.directory, hostnames=tuple(args.hostname), overwrite=args.overwrite
    )
    print(f"certificate {cert}\nprivate key {key}")
    return 0
