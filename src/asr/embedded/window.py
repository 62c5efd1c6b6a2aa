"""The encoder window of a decode: Whisper's full 30 s, or a shorter one for drafts.

faster-whisper pads every utterance's log-Mel features to 3000 frames (30 s), and
CTranslate2's Whisper encoder accepts fewer: the encoder's cost falls faster than the
window (tiny.en int8, one thread: 0.36 CPU-s at 3000 frames, 0.09 at 1500, 0.05 at 1000),
and it was ~90% of a draft decode. Exactly the speech frames make Whisper loop
("... the the the", WER 236-508% on librispeech_mini and ljspeech32); a window of at
least 15 s, and 5 s past the audio, decoded both sets as the full window does (drafts of
whole clips, greedy: ljspeech32 7.04% either way, librispeech_mini 2.99% against 1.99%,
one word). Finals keep the full window: with timestamps and word times a 15 s window
cost 2.5 points on librispeech_mini, and without them JFK streamed through the server
lost a word ("ask not" heard as "asked not", on a 20 s window too).

:func:`install` wraps a loaded model's ``encode`` so that, inside :func:`encoder_window`,
the padded features are cut to that window; elsewhere (and in other threads) it is the
model's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["MARGIN_FRAMES", "MIN_FRAMES", "encoder_window", "install", "short_window"]

FULL_FRAMES = 3000
"""Whisper's window: 30 s of 10 ms feature frames."""

MIN_FRAMES = 1500
"""A draft's window is at least this long (15 s)."""

MARGIN_FRAMES = 500
"""... and this much longer than its audio (5 s)."""

_HOP = 160  # samples per feature frame at 16 kHz

_local = threading.local()


def short_window(samples: int) -> int:
    """Feature frames a draft decode of ``samples`` of audio encodes (even, <= 3000)."""
    frames = samples // _HOP + 1 + MARGIN_FRAMES
    return min(FULL_FRAMES, max(MIN_FRAMES, frames + frames % 2))


@contextlib.contextmanager
def encoder_window(frames: int | None) -> Iterator[None]:
    """Encode at most ``frames`` feature frames in this thread (``None``: the full window).

    The whole decode must run inside: faster-whisper's ``transcribe`` encodes lazily, when
    its segments are iterated.
    """
    previous = getattr(_local, "frames", None)
    _local.frames = frames
    try:
        yield
    finally:
        _local.frames = previous


def install(model: Any) -> Any:
    """Make ``model.encode`` (a ``faster_whisper.WhisperModel``'s) honour the window."""
    encode = model.encode

    def windowed(features: Any) -> Any:
        frames = getattr(_local, "frames", None)
        if frames is not None and features.shape[-1] > frames:
            features = features[..., :frames]
        return encode(features)

    model.encode = windowed
    return model
