"""The WebSocket server alone in a process, for measuring its own CPU and memory.

``python -m load.gateway --riva 127.0.0.1:50051 [--port 0] [--max-sessions 16]`` prints
``load.gateway: serving on ws://127.0.0.1:PORT/v1/audio/transcriptions/stream`` once it
listens and serves until SIGTERM/SIGINT. Plain ws:// on loopback, no demo page. (The same
as ``asr serve`` with those settings; this entry point only exists so the load tool and
the gateway benchmark can pass limits on the command line and read the address back.)
"""

from __future__ import annotations

import argparse
import logging

from asr.settings import RivaSettings
from asr_server.app import run
from asr_server.limits import Limits
from asr_server.settings import ServerSettings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.gateway", description=__doc__)
    parser.add_argument("--riva", required=True, help="Riva endpoint HOST:PORT")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-sessions", type=int, default=16)
    parser.add_argument("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    settings = ServerSettings(
        host=args.host,
        port=args.port,
        static_dir=None,
        limits=Limits(max_sessions=args.max_sessions),
    )
    # The production defaults for retries and the breaker (RIVA_* may override them).
    riva = RivaSettings(uri=args.riva)
    run(
        settings,
        riva,
        on_ready=lambda server: print(f"load.gateway: serving on {server.url}", flush=True),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
