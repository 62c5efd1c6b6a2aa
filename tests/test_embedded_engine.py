"""WhisperEngine's n-best, boosts and previous-text context, on real audio with the real model.

int8 decodes differ a little between CPUs (AVX2, AVX-512), so texts are compared after
``asr.wer.normalize`` or with WER bounds, exactly only where the phrase is robust.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from asr.audio import read_audio
from asr.embedded import WhisperEngine
from asr.embedded.engine import Hypothesis, Transcription
from asr.embedded.nbest import boost_sentence, count_phrase, prompt_text
from asr.wer import normalize, word_error_rate

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)


@pytest.fixture(scope="module")
def engine() -> WhisperEngine:
    return WhisperEngine()  # the model is cached per process by load_whisper


@pytest.fixture(scope="module")
def jfk(speech_dir: Path) -> np.ndarray:
    return read_audio(speech_dir / "jfk" / "jfk.wav")[0]


@pytest.fixture(scope="module")
def hester(speech_dir: Path) -> np.ndarray:
    # "Yet these thoughts affected Hester Prynne less with hope than apprehension.":
    # the rare name makes the beam's hypotheses differ in words.
    return read_audio(speech_dir / "librispeech_mini" / "1221-135766-0002.wav")[0]


def test_single_best_unchanged(engine: WhisperEngine, jfk: np.ndarray) -> None:
    result = engine.transcribe(jfk)
    assert normalize(result.text) == JFK
    assert result.text.startswith("And so my fellow Americans")
    assert result.alternatives == (Hypothesis(result.text, result.confidence),)
    assert 0.3 < result.confidence <= 1.0


def test_nbest_distinct_best_first(engine: WhisperEngine, hester: np.ndarray) -> None:
    result = engine.transcribe(hester, alternatives=3)
    assert isinstance(result, Transcription)
    assert 2 <= len(result.alternatives) <= 3
    words = [normalize(h.text) for h in result.alternatives]
    assert len(set(words)) == len(words), words
    assert result.alternatives[0] == Hypothesis(result.text, result.confidence)
    assert all(0.0 < h.confidence <= 1.0 for h in result.alternatives)
    for h in result.alternatives:
        assert (
            word_error_rate(
                ["yet these thoughts affected hester prynne less with hope than apprehension"],
                [h.text],
            )
            <= 0.35
        )


def test_nbest_top_matches_single_best(engine: WhisperEngine, jfk: np.ndarray) -> None:
    single = engine.transcribe(jfk)
    nbest = engine.transcribe(jfk, alternatives=3, word_timestamps=True)
    assert normalize(nbest.text) == normalize(single.text) == JFK
    assert nbest.alternatives[0].text == nbest.text
    # Word timings belong to the top hypothesis and cover it word for word.
    assert [w.word for w in nbest.words] == nbest.text.split()
    assert nbest.words[0].start < 1.0 < nbest.words[-1].end <= 11.1


@pytest.mark.parametrize("word", ["country", "fellow"])
def test_negative_boost_removes_word(engine: WhisperEngine, jfk: np.ndarray, word: str) -> None:
    result = engine.transcribe(jfk, boosts=[(word, -20.0)])
    assert count_phrase(word, result.text) == 0, result.text
    assert word_error_rate([JFK], [result.text]) <= 0.35  # only that word changed
    # A mild penalty does not outweigh the audio's evidence.
    assert count_phrase(word, engine.transcribe(jfk, boosts=[(word, -1.0)]).text) >= 1


def test_positive_boost_keeps_word_and_casing(engine: WhisperEngine, jfk: np.ndarray) -> None:
    result = engine.transcribe(jfk, boosts=[("country", 20.0), ("americans", 20.0)])
    assert normalize(result.text) == JFK
    # Lower-case phrases do not lower-case the transcript's proper nouns or sentences.
    assert "fellow Americans" in result.text
    assert result.text.startswith("And so")
    assert "your country" in result.text
    assert result.text.endswith(".")


def test_boost_favours_rare_name_in_its_casing(engine: WhisperEngine, hester: np.ndarray) -> None:
    plain = engine.transcribe(hester).text
    boosted = engine.transcribe(hester, boosts=[("prynne", 20.0)]).text
    assert "Prynne" not in plain  # tiny.en alone spells it otherwise
    assert "Hester Prynne" in boosted
    assert boosted.startswith("Yet these thoughts")


def test_zero_boost_has_no_effect(engine: WhisperEngine, jfk: np.ndarray) -> None:
    assert engine.transcribe(jfk, boosts=[("nvidia", 0.0)]).text == engine.transcribe(jfk).text


def test_previous_text_accepted(engine: WhisperEngine, jfk: np.ndarray) -> None:
    previous = "We observe today not a victory of party, but a celebration of freedom."
    result = engine.transcribe(jfk, previous_text=previous, punctuate=True)
    assert normalize(result.text) == JFK
    assert result.text.startswith("And so")
    tail = engine.transcribe(jfk[int(3.3 * 16_000) :], previous_text="And so, my fellow Americans,")
    assert word_error_rate([JFK.split("americans ")[1]], [tail.text]) <= 0.15


def test_a_misheard_previous_final_never_costs_the_utterance(
    engine: WhisperEngine, jfk: np.ndarray
) -> None:
    # After the forced cut inside "your country", tiny.en heard the first half as "like
    # your car"; with that alone as the prompt it returned nothing for the rest (AVX2).
    rest = jfk[6 * 16_000 : int(10.78 * 16_000)]
    for punctuate in (True, False):
        text = engine.transcribe(rest, punctuate=punctuate, previous_text="like your car").text
        assert "ask what you can do for your country" in normalize(text), text


def test_the_pause_after_the_last_word_is_not_filled_with_thank_you(
    engine: WhisperEngine, jfk: np.ndarray
) -> None:
    # After the session's finals as prompt, Whisper closed JFK's tail with "Thank you."
    # (a 0.14 s segment it rated 0.75 likely no speech).
    tail = jfk[6 * 16_000 : int(10.64 * 16_000)]
    previous = "And so my fellow Americans ask not like you are coming."
    text = engine.transcribe(tail, punctuate=True, previous_text=previous).text
    assert normalize(text).endswith("ask what you can do for your country"), text


def test_prompt_text() -> None:
    assert boost_sentence(["nvidia", "Kubernetes", "GPU", " "]) == "Nvidia, Kubernetes, GPU."
    assert prompt_text([], None, None) is None
    words = " ".join(f"w{i}" for i in range(80))
    prompt = prompt_text(["prynne"], "Okay.", words)
    assert prompt is not None
    assert prompt.startswith("Prynne. Okay. w30 ")
    assert prompt.endswith(" w79")
    assert count_phrase("my fellow", "And so, my Fellow Americans: my fellow!") == 2
    assert count_phrase("fellow", "fellows") == 0
