"""Draft decodes on a shorter encoder window: the window's size, and that it holds on real
audio with the real model (text as the full window gives it)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_audio
from asr.embedded import WhisperEngine
from asr.embedded.model import load_whisper
from asr.embedded.window import (
    MARGIN_FRAMES,
    MIN_FRAMES,
    encoder_window,
    short_window,
)
from asr.wer import normalize, word_error_rate

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)


@pytest.mark.parametrize(
    ("seconds", "frames"),
    [(0.6, MIN_FRAMES), (9.0, MIN_FRAMES), (12.0, 1202 + MARGIN_FRAMES)],
)
def test_short_window(seconds: float, frames: int) -> None:
    assert short_window(int(seconds * 16_000)) == frames
    assert short_window(30 * 16_000) == 3000  # never past Whisper's window
    assert all(short_window(n) % 2 == 0 for n in range(0, 16_000 * 30, 777))


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine()


@pytest.fixture(scope="module")
def jfk(speech_dir: Path) -> np.ndarray:
    return read_audio(speech_dir / "jfk" / "jfk.wav")[0]


def test_draft_on_short_window_matches_full(engine: WhisperEngine, jfk: np.ndarray) -> None:
    draft = engine.transcribe(jfk, draft=True)
    assert word_error_rate([JFK], [draft.text]) <= 0.05
    prefix = engine.transcribe(jfk[: 3 * 16_000], draft=True)
    assert normalize(prefix.text).startswith("and so my fellow americans")


def test_window_cuts_the_encoder_input_in_this_thread_only(jfk: np.ndarray) -> None:
    from faster_whisper.audio import pad_or_trim

    model = load_whisper()  # the engine's model, cached per process
    features = pad_or_trim(model.feature_extractor(jfk[: 2 * 16_000]))
    with encoder_window(1500):
        assert list(model.encode(features).shape)[:2] == [1, 750]  # the encoder halves
        with ThreadPoolExecutor(1) as pool:
            other = pool.submit(model.encode, features).result()
        assert list(other.shape)[:2] == [1, 1500]
    assert list(model.encode(features).shape)[:2] == [1, 1500]
