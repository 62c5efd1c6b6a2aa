"""Streaming speech-to-text in front of NVIDIA Riva.

The public surface: :class:`RivaASRClient` (asyncio) and :class:`SyncRivaASRClient`,
:class:`SpeechBackend` (what the gateway needs of a backend, Riva's client or Dynamo's),
typed results (:class:`Partial`, :class:`Final`), options, settings, audio helpers and
the exception tree rooted at :class:`ASRError`.
"""

from __future__ import annotations

import os

# gRPC logs a failed TLS handshake at INFO (grpc/grpc#38058), and grpcio prints INFO lines
# to stderr while GRPC_VERBOSITY is unset, although ERROR is its documented default. It is
# read when grpc is first imported, so it is set here, before that; a value already set wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

from .audio import chunk_bytes, load_pcm16, paced, read_audio, resample
from .backend import SpeechBackend
from .client import HealthStatus, ModelInfo, RivaASRClient
from .errors import (
    ASRError,
    AudioFormatError,
    AuthenticationError,
    CircuitOpenError,
    ConfigurationError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    PermanentError,
    PermissionDeniedError,
    ResourceExhaustedError,
    ServerError,
    StreamInterruptedError,
    TransientError,
    UnavailableError,
    UnimplementedError,
)
from .events import Alternative, Final, Partial, Progress, TranscriptEvent, Word
from .markers import EndOfUtterance
from .options import AudioEncoding, EndpointingConfig, RecognitionOptions
from .settings import BreakerSettings, KeepaliveSettings, RetrySettings, RivaSettings
from .sync import SyncRivaASRClient

__version__ = "0.1.0"

__all__ = [
    "ASRError",
    "Alternative",
    "AudioEncoding",
    "AudioFormatError",
    "AuthenticationError",
    "BreakerSettings",
    "CircuitOpenError",
    "ConfigurationError",
    "DeadlineExceededError",
    "EndOfUtterance",
    "EndpointingConfig",
    "Final",
    "HealthStatus",
    "InvalidArgumentError",
    "KeepaliveSettings",
    "ModelInfo",
    "NotFoundError",
    "Partial",
    "PermanentError",
    "PermissionDeniedError",
    "Progress",
    "RecognitionOptions",
    "ResourceExhaustedError",
    "RetrySettings",
    "RivaASRClient",
    "RivaSettings",
    "ServerError",
    "SpeechBackend",
    "StreamInterruptedError",
    "SyncRivaASRClient",
    "TranscriptEvent",
    "TransientError",
    "UnavailableError",
    "UnimplementedError",
    "Word",
    "chunk_bytes",
    "load_pcm16",
    "paced",
    "read_audio",
    "resample",
]
