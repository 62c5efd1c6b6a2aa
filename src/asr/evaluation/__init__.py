"""Measure quality and speed on real audio: the golden WER runner.

:func:`~asr.evaluation.runner.run_set` streams every clip of a set through a transport
(direct gRPC, or the WebSocket server) and measures per clip WER, time to first partial,
final latency after the end of speech, partial count and errors;
:mod:`~asr.evaluation.report` writes Markdown, JSON and a latency plot.
"""

from __future__ import annotations

from ..extras import require_extra

require_extra("eval", "the golden WER runner")


from .corpus import Clip, load_corpus, mix_noise
from .runner import ClipResult, GrpcTransport, SetResult, Transport, run_set

__all__ = [
    "Clip",
    "ClipResult",
    "GrpcTransport",
    "SetResult",
    "Transport",
    "load_corpus",
    "mix_noise",
    "run_set",
]
