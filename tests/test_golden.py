"""The golden sets: the embedded engine must not regress on clean speech, speech with
noise mixed in, a long multi-utterance stream, or non-speech."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from asr import RivaASRClient
from asr.evaluation import GrpcTransport, load_corpus, mix_noise, run_set
from asr.evaluation import golden as goldens
from asr.evaluation.corpus import NoiseKind, join_clips
from asr.evaluation.runner import run_clip
from asr.options import RecognitionOptions
from asr.wer import word_error_rate

from .conftest import SPEECH, ServerThread

GOLDEN = Path(__file__).parent / "golden"
FIXTURES = Path(__file__).parent / "fixtures"


def _noisy(
    samples: npt.NDArray[np.float32], index: int, *, kind: NoiseKind, snr: float
) -> npt.NDArray[np.float32]:
    return mix_noise(samples, snr, kind, seed=index)


CASES = {
    "librispeech_mini-clean": (SPEECH / "librispeech_mini", None),
    "librispeech_mini-pink10": (
        SPEECH / "librispeech_mini",
        partial(_noisy, kind="pink", snr=10.0),
    ),
    "librispeech_mini-white5": (
        SPEECH / "librispeech_mini",
        partial(_noisy, kind="white", snr=5.0),
    ),
    "librivox_ps5-clean": (SPEECH / "librivox_ps5", None),
    "jfk-clean": (SPEECH / "jfk", None),
    "non_speech-clean": (FIXTURES / "non_speech", None),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
async def test_golden_set(riva_server: ServerThread, case: str) -> None:
    folder, transform = CASES[case]
    spec = goldens.load(GOLDEN / f"{case}.json")
    async with RivaASRClient(uri=riva_server.uri) as client:
        result = await run_set(
            GrpcTransport(client),
            load_corpus(folder),
            name=folder.name,
            condition=spec["condition"],
            transform=transform,
        )
    assert result.errors == 0
    assert goldens.check(result, spec) == []


@pytest.mark.slow
async def test_long_multi_utterance_stream(riva_server: ServerThread) -> None:
    clips = load_corpus(SPEECH / "librispeech_mini")[:5]
    joined, samples = join_clips(clips, gap_seconds=1.5)
    async with RivaASRClient(uri=riva_server.uri) as client:
        result = await run_clip(
            GrpcTransport(client),
            joined,
            samples,
            options=RecognitionOptions(word_time_offsets=True),
            realtime=False,
        )
    assert result.error is None
    assert result.finals >= len(clips)
    # Whole-clip decoding of the same five clips scores about 5 %.
    assert word_error_rate([joined.text], [result.hypothesis]) < 0.10
