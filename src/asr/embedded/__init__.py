"""An embedded, Riva-compatible ASR server on CPU: Whisper tiny.en with Silero VAD.

Stages, one per module: :mod:`.model` (locate, verify, load), :mod:`.audio_input` (bytes
to 16 kHz float32), :mod:`.vad` (streaming Silero VAD), :mod:`.endpointer` (utterance
start/end from VAD probabilities), :mod:`.recognizer` (per-stream decisions, sans-I/O),
:mod:`.engine` (Whisper), :mod:`.scheduler` (decode pool), :mod:`.requests` (proto
parsing and building), :mod:`.servicer` / :mod:`.health` / :mod:`.server` (grpc.aio).
"""

from __future__ import annotations

from ..extras import require_extra

require_extra("embedded", "the embedded Riva-compatible server")


from .endpointer import EndpointParams
from .engine import Engine, Transcription, WhisperEngine, WordTiming
from .server import ASR_SERVICE, EmbeddedServer, ServerTLS, run

__all__ = [
    "ASR_SERVICE",
    "EmbeddedServer",
    "EndpointParams",
    "Engine",
    "ServerTLS",
    "Transcription",
    "WhisperEngine",
    "WordTiming",
    "run",
]
