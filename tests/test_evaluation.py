"""The golden-WER runner's pure parts: noise mixing, golden checks, reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from asr.evaluation import ClipResult, SetResult, golden, load_corpus, mix_noise
from asr.evaluation.corpus import NoiseKind, join_clips
from asr.evaluation.report import summary, to_markdown, write_reports
from asr.wer import normalize, word_error_rate

from .conftest import SPEECH

FIXTURES = Path(__file__).parent / "fixtures"


def clip(id: str, ref: str, hyp: str, **kw: object) -> ClipResult:
    fields: dict[str, object] = dict(
        id=id,
        reference=ref,
        hypothesis=hyp,
        wer=word_error_rate([ref], [hyp]) if normalize(ref) else None,
        partials=3,
        finals=1,
        first_partial_ms=400.0,
        final_latency_ms=700.0,
        audio_seconds=5.0,
        wall_seconds=5.5,
    )
    fields.update(kw)
    return ClipResult(**fields)  # type: ignore[arg-type]  # defaults and overrides, untyped


@pytest.mark.parametrize("kind", ["white", "pink"])
@pytest.mark.parametrize("snr", [10.0, 5.0])
def test_noise_is_mixed_at_the_asked_snr(kind: NoiseKind, snr: float) -> None:
    speech = load_corpus(SPEECH / "jfk")[0].samples()
    noisy = mix_noise(speech, snr, kind, seed=3)
    noise = noisy.astype(np.float64) - speech
    measured = 10 * np.log10(np.mean(speech.astype(np.float64) ** 2) / np.mean(noise**2))
    assert measured == pytest.approx(snr, abs=0.2)
    assert np.array_equal(noisy, mix_noise(speech, snr, kind, seed=3))


def test_pink_noise_has_more_low_than_high_energy() -> None:
    noisy = mix_noise(np.zeros(16_000, np.float32) + 1e-3, 0.0, "pink", seed=1)
    spectrum = np.abs(np.fft.rfft(noisy - noisy.mean())) ** 2
    assert spectrum[10:500].mean() > 10 * spectrum[4000:8000].mean()


def test_corpus_and_joined_stream() -> None:
    clips = load_corpus(SPEECH / "librivox_ps5")
    assert len(clips) == 5 and all(c.path.exists() and c.text for c in clips)
    joined, samples = join_clips(clips[:2], gap_seconds=1.0)
    expected = sum(len(c.samples()) for c in clips[:2]) + 2 * 16_000
    assert len(samples) == expected
    assert joined.text == f"{clips[0].text} {clips[1].text}"
    non_speech = load_corpus(FIXTURES / "non_speech")
    assert {c.text for c in non_speech} == {""}


def test_golden_check_flags_regressions() -> None:
    good = SetResult(
        name="s",
        transport="grpc",
        condition="clean",
        realtime=False,
        clips=(clip("a", "the cat sat", "the cat sat"), clip("b", "a dog ran", "a dog ran")),
    )
    spec = golden.make(good)
    assert spec["clips"]["a"] == {"expected": "the cat sat", "max_wer": 0.34}  # one word
    assert golden.check(good, spec) == []
    bad = SetResult(
        name="s",
        transport="grpc",
        condition="clean",
        realtime=False,
        clips=(
            clip("a", "the cat sat", "a bat sat"),
            clip("b", "a dog ran", "", error="UnavailableError: down"),
        ),
    )
    problems = golden.check(bad, spec)
    assert any(p.startswith("a: WER 66.7% > 34.0%") for p in problems)
    assert any("UnavailableError" in p for p in problems)


def test_golden_silence_expects_no_text() -> None:
    quiet = SetResult(
        name="n", transport="grpc", condition="clean", realtime=False, clips=(clip("hiss", "", ""),)
    )
    spec = golden.make(quiet)
    assert quiet.wer is None and golden.check(quiet, spec) == []
    noisy = SetResult(
        name="n",
        transport="grpc",
        condition="clean",
        realtime=False,
        clips=(clip("hiss", "", "thank you"),),
    )
    assert golden.check(noisy, spec) == ["hiss: expected no text, got 'thank you'"]


def test_reports(tmp_path: Path) -> None:
    result = SetResult(
        name="s",
        transport="grpc",
        condition="pink@10dB",
        realtime=True,
        clips=(
            clip("a", "the cat sat", "the cat sat", first_partial_ms=300.0),
            clip("b", "a dog ran", "a dog", final_latency_ms=900.0),
        ),
    )
    figures = summary(result)
    assert figures["wer"] == pytest.approx(1 / 6)
    assert figures["first_partial_ms"]["p50"] == pytest.approx(350.0)
    assert figures["final_latency_ms"]["p95"] == pytest.approx(890.0)
    markdown = to_markdown([result])
    assert "| s | grpc | pink@10dB | real time | 2 | 16.7% | 0 |" in markdown
    paths = write_reports([result], tmp_path)
    data = json.loads(paths[0].read_text())
    assert data["sets"][0]["clip_results"][1]["hypothesis"] == "a dog"
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
