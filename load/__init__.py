"""Load tool: many concurrent real-time sessions against the embedded Riva server and the
WebSocket server, ramped up until the engine stops keeping up.

Run from the repository root::

    python -m load --mode both --levels 1,2,3,4,6 --out reports/load

It starts its own servers in subprocesses (``asr riva-local`` and the WebSocket server),
so each one's CPU and memory are its own, streams speech clips at real time through
:class:`asr.client.RivaASRClient` (direct gRPC) or the WebSocket contract
(:class:`asr.evaluation.websocket.WebSocketTransport`), and writes ``load.json`` and
``load.md``. Only loopback targets are accepted unless ``--allow-remote`` is given.

Modules: :mod:`load.procs` (server subprocesses, /proc sampling), :mod:`load.session`
(one measured session), :mod:`load.ramp` (levels, the capacity judgement and the overload
probe), :mod:`load.report` (JSON and Markdown), :mod:`load.cli`.
"""

from __future__ import annotations

from .ramp import Criteria, LoadConfig, run_load
from .report import to_markdown, write_reports
from .session import SessionResult

__all__ = ["Criteria", "LoadConfig", "SessionResult", "run_load", "to_markdown", "write_reports"]
