"""Streaming Silero VAD v6: 16 kHz audio in, one speech probability per 32 ms frame out.

The ONNX model takes frames of 512 new samples preceded by the previous frame's last 64
samples (zeros before the first frame) and carries an LSTM state ``(h, c)`` from call to
call. Feeding it chunk by chunk with that context and state gives exactly the probabilities
of a single pass over the whole audio (faster-whisper's ``SileroVADModel``), whatever the
chunk sizes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .model import load_vad_session

__all__ = ["FRAME_SAMPLES", "SileroVAD"]

FRAME_SAMPLES = 512
"""Samples per VAD frame at 16 kHz (32 ms)."""

_CONTEXT = 64

Float32Array = npt.NDArray[np.float32]


class SileroVAD:
    """Per-stream Silero VAD state. Not thread-safe; one instance per stream.

    Args:
        session: An ``onnxruntime.InferenceSession`` of Silero VAD v6; ``None`` uses the
            verified, process-wide one from :func:`asr.embedded.model.load_vad_session`.
    """

    def __init__(self, session: Any | None = None) -> None:
        self._session = session if session is not None else load_vad_session()
        self._h = np.zeros((1, 1, 128), np.float32)
        self._c = np.zeros((1, 1, 128), np.float32)
        self._context = np.zeros(_CONTEXT, np.float32)
        self._pending = np.zeros(0, np.float32)
        self.frames = 0
        """Frames scored so far."""

    def process(self, samples: Float32Array) -> Float32Array:
        """Score the frames that ``samples`` complete.

        Returns:
            One probability in [0, 1] per newly completed 512-sample frame (possibly none);
            the remainder is kept for the next call.
        """
        audio = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = audio.size // FRAME_SAMPLES
        if n == 0:
            self._pending = audio
            return np.zeros(0, np.float32)
        frames = audio[: n * FRAME_SAMPLES].reshape(n, FRAME_SAMPLES)
        self._pending = audio[n * FRAME_SAMPLES :].copy()
        contexts = np.concatenate([self._context[None, :], frames[:-1, -_CONTEXT:]], axis=0)
        batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
        self._context = frames[-1, -_CONTEXT:].copy()
        probs, self._h, self._c = self._session.run(
            None, {"input": batch, "h": self._h, "c": self._c}
        )
        self.frames += n
        return np.asarray(probs, np.float32).reshape(n)
