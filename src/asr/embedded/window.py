"""The encoder window of a decode: shorter than Whisper's 30 s, longer for finals than drafts.

faster-whisper pads every utterance's log-Mel features to 3000 frames (30 s), and
CTranslate2's Whisper encoder accepts fewer. The encoder's cost falls faster than the
window (tiny.en int8, one thread, 2-core Xeon with AVX-512: 0.36 CPU-s at 3000 frames,
0.09 at 1500, 0.05 at 1000; a whole 3 s final decode 0.55 s at 3000 frames, 0.29 at 2400,
0.17 at 2000), and it was ~90% of a decode. Exactly the speech frames make Whisper loop
("... the the the", WER 236-508% on librispeech_mini and ljspeech32), so the window is
padded past the audio:

* drafts: at least 15 s, and 5 s past the audio. Drafts of whole clips, greedy, decoded
  both sets as the full window does (ljspeech32 7.04% either way, librispeech_mini 2.99%
  against 1.99%, one word);
* finals: at least 20 s, and 10 s past the audio. A 15 s window cost 2.5 points on
  librispeech_mini with word times. On 20 s, streamed (clips sent as fast as they
  are read, finals only), WER moved by at most one word per set against 30 s on
  librispeech_mini, ljspeech32, librivox_ps5 and JFK, on AVX-512 and AVX2 kernels, with
  and without word times, as often to the better as to the worse; the decode costs 0.3x.

:func:`install` wraps a loaded model's ``encode`` so that, inside :func:`encoder_window`,
the padded features are cut to that window; elsewhere (and in other threads) it is the
model's own.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "DRAFT_MARGIN_FRAMES",
    "DRAFT_MIN_FRAMES",
    "FINAL_MARGIN_FRAMES",
    "FINAL_MIN_FRAMES",
    "draft_window",
    "encoder_window",
    "final_window",
    "install",
]

FULL_FRAMES = 3000
"""Whisper's window: 30 s of 10 ms feature frames."""

DRAFT_MIN_FRAMES = 1500
"""A draft's window is at least this long (15 s)."""

DRAFT_MARGIN_FRAMES = 500
"""... and this much longer than its audio (5 s)."""

FINAL_MIN_FRAMES = 2000
"""A final's window is at least this long (20 s)."""

FINAL_MARGIN_FRAMES = 1000
"""... and this much longer than its audio (10 s)."""

_HOP = 160  # samples per feature frame at 16 kHz

_local = threading.local()


def draft_window(samples: int) -> int:
    """Feature frames a draft decode of ``samples`` of audio encodes (even, <= 3000)."""
    return _window(samples, DRAFT_MIN_FRAMES, DRAFT_MARGIN_FRAMES)


def final_window(samples: int) -> int:
    """Feature frames a final decode of ``samples`` of audio encodes (even, <= 3000)."""
    return _window(samples, FINAL_MIN_FRAMES, FINAL_MARGIN_FRAMES)


def _window(samples: int, minimum: int, margin: int) -> int:
    frames = samples // _HOP + 1 + margin
    return min(FULL_FRAMES, max(minimum, frames + frames % 2))


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
