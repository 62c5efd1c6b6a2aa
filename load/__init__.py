"""Load tool: many concurrent real-time sessions against the embedded Riva server and the
WebSocket server, ramped up until the engine stops keeping up.

Run from the repository root::

    ASR_SPEECH_FIXTURES=/path/to/speech python -m load --mode both --levels 1,2,3,4,6 \
        --out reports/load

It starts its own servers in subprocesses (``asr riva-local`` and the WebSocket server),
so each one's CPU and memory are its own, streams speech clips at real time through
:class:`asr.client.RivaASRClient` (direct gRPC) or the WebSocket contract
(:class:`asr.evaluation.websocket.WebSocketTransport`), and writes ``load.json`` and
``load.md``. Only loopback targets are accepted unless ``--allow-remote`` is given.

``python -m load --soak`` runs a bounded soak instead: ``asr riva-local`` and ``asr serve``
in subprocesses, WebSocket sessions ramped past capacity and back down, Riva killed
(SIGKILL) once and restarted on its port, every session and second of audio accounted
for, and the servers' memory, fds and threads checked against their baseline afterwards.

Modules: :mod:`load.config` (what a run does, when a level keeps up, loopback targets),
:mod:`load.clips` (the speech set as PCM), :mod:`load.procs` (server subprocesses and
their CPU, memory, fds and threads), :mod:`load.session` (one measured session),
:mod:`load.levels` (a level and the ramp), :mod:`load.judge` (a level's figures and the
capacity judgement), :mod:`load.overload` (the probe past the limit), :mod:`load.ramp`
(the whole run), :mod:`load.report` (JSON and Markdown), :mod:`load.cli`; for the soak
:mod:`load.soak` (the run), :mod:`load.soak_session` (one session over the WebSocket
contract), :mod:`load.soak_probe` (``/readyz``, ``/metrics``, the timeline),
:mod:`load.soak_figures` (the accounting) and :mod:`load.soak_report`.
"""

from __future__ import annotations

from .config import Criteria, LoadConfig
from .ramp import run_load
from .report import to_markdown, write_reports
from .session import SessionResult
from .soak import SoakConfig, run_soak
from .soak_report import soak_markdown, soak_summary, write_soak_reports

__all__ = [
    "Criteria",
    "LoadConfig",
    "SessionResult",
    "SoakConfig",
    "run_load",
    "run_soak",
    "soak_markdown",
    "soak_summary",
    "to_markdown",
    "write_reports",
    "write_soak_reports",
]
