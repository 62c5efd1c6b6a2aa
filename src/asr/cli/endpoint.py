"""The Riva endpoint a command talks to: the one named, or the embedded engine in-process.

Where neither ``--server`` nor ``RIVA_URI`` names an endpoint, ``asr transcribe`` and
``asr wer`` start the embedded Riva-compatible server inside the command, on a free
loopback port, and say so on stderr in one line: the embedded default works with nothing
else running.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ..extras import MissingExtraError
from ..settings import RivaSettings
from .flags import server_given, settings_from

__all__ = ["riva_endpoint"]


@asynccontextmanager
async def riva_endpoint(args: argparse.Namespace) -> AsyncIterator[RivaSettings]:
    """Settings for the endpoint to use, serving the embedded engine while in the block."""
    if server_given(args):
        yield settings_from(args)
        return
    try:
        from ..embedded.server import EmbeddedServer
    except MissingExtraError as exc:
        raise SystemExit(f"asr: no --server or RIVA_URI given, and {exc}") from exc
    print(
        "asr: no --server or RIVA_URI given: using the embedded engine in-process "
        "(Whisper tiny.en on CPU)",
        file=sys.stderr,
        flush=True,
    )
    async with EmbeddedServer(host="127.0.0.1", port=0) as server:
        # TLS flags mean nothing to an in-process plaintext server on loopback.
        yield settings_from(
            args,
            uri=f"127.0.0.1:{server.port}",
            use_ssl=False,
            ssl_root_cert=None,
            ssl_client_cert=None,
            ssl_client_key=None,
        )
