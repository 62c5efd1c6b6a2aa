"""Whisper prompts and n-best decoding for the engine: boosts, alternatives, context.

faster-whisper's ``transcribe`` returns one hypothesis, so an n-best (Riva
``RecognitionConfig.max_alternatives``) is decoded here with CTranslate2 directly: one
encoder pass, one beam search returning several hypotheses, reranked by log-probability
plus each ``SpeechContext.boost`` times the phrase's occurrences. Negative boosts also
get a second beam search with the phrases' first tokens suppressed, so that a hypothesis
without the phrase exists to rerank to; its hypotheses are rescored without suppression
(CTranslate2 renormalises over the allowed tokens, which made "your concrete" for JFK's
"your country" look only 2.6 nats worse instead of 13).
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from ..wer import normalize

__all__ = ["Candidate", "boost_sentence", "count_phrase", "decode_nbest", "prompt_text"]

Float32Array = npt.NDArray[np.float32]

# The last words of the session's previous final that condition the next utterance:
# enough for a sentence's context, well inside Whisper's 223-token prompt limit.
PREVIOUS_WORDS = 50

# Whisper's decoder context (tokens), and the part of it a prompt may take, as in
# faster-whisper's ``get_prompt``.
_MAX_LENGTH = 448
_MAX_PROMPT = _MAX_LENGTH // 2 - 1


@dataclass(frozen=True, slots=True)
class Candidate:
    """One decoded hypothesis.

    Attributes:
        text: The decoded text, stripped.
        tokens: Its text tokens (no special tokens).
        logprob: Total log-probability of the tokens in nats.
        confidence: ``exp`` of the mean token log-probability.
    """

    text: str
    tokens: tuple[int, ...]
    logprob: float
    confidence: float


def boost_sentence(phrases: Sequence[str]) -> str:
    """Render phrases to favour as a short punctuated sentence for Whisper's prompt.

    Whisper copies a prompted word's exact casing, and the style of the whole prompt: given
    the bare phrase "americans", JFK came back as "and so my fellow americans ask not ..."
    without capitals or final stop. An all-lower-case phrase says nothing about casing, so
    it is title-cased ("Americans", "Prynne"); a common word stays lower-case in the middle
    of a sentence even so ("Country" in the prompt still gave "your country"). Phrases with
    any capital are kept as given. Joining them as "A, B." keeps the prompt punctuated.
    """
    rendered = [p if p != p.lower() else p.title() for p in (q.strip() for q in phrases) if p]
    return ", ".join(rendered) + "." if rendered else ""


def prompt_text(boosted: Sequence[str], style: str | None, previous_text: str | None) -> str | None:
    """The text to put after ``<|startofprev|>``: boosted phrases, style, then context.

    The previous text comes last because Whisper continues from the end of the prompt.
    """
    parts = [boost_sentence(boosted)]
    if style:
        parts.append(style)
    if previous_text:
        parts.append(" ".join(previous_text.split()[-PREVIOUS_WORDS:]))
    joined = " ".join(p for p in parts if p)
    return joined or None


def count_phrase(phrase: str, text: str) -> int:
    """How often ``phrase`` occurs in ``text`` as whole words, ignoring case and punctuation."""
    words = normalize(phrase)
    if not words:
        return 0
    return len(re.findall(rf"(?<!\S){re.escape(words)}(?!\S)", normalize(text)))


@functools.cache
def _tokenizer(model: Any) -> Any:
    from faster_whisper.tokenizer import Tokenizer

    return Tokenizer(model.hf_tokenizer, model.model.is_multilingual, "transcribe", "en")


def _first_tokens(tokenizer: Any, phrases: Sequence[str]) -> list[int]:
    """The first token of each phrase as Whisper may start it: with or without a space,
    as given, lower-case or capitalised."""
    out: set[int] = set()
    for phrase in phrases:
        p = phrase.strip()
        for form in {p, p.lower(), p.capitalize(), p.title()}:
            for spelled in (form, " " + form):
                ids = tokenizer.encode(spelled)
                if ids:
                    out.add(ids[0])
    return sorted(out)


def _rescore(
    model: Any, encoder_output: Any, prompt: list[int], ids: list[int], frames: int
) -> float:
    """Total log-probability of ``ids`` after ``prompt``, without any token suppressed."""
    probs = model.model.align(encoder_output, prompt, [ids], frames)[0].text_token_probs
    return float(np.sum(np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-12))))


def decode_nbest(
    model: Any,
    audio: Float32Array,
    *,
    n: int,
    beam_size: int,
    prompt: str | None,
    boosts: Sequence[tuple[str, float]],
    word_timestamps: bool,
    no_speech_threshold: float,
    log_prob_threshold: float,
) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """Decode up to ``n`` distinct hypotheses of one utterance (at most 30 s), best first.

    Args:
        model: A ``faster_whisper.WhisperModel``.
        audio: 16 kHz mono float32.
        n: Hypotheses wanted; fewer come back when the beam has fewer distinct texts.
        beam_size: The engine's beam width; the search uses at least ``2 n + 2``.
        prompt: Text for ``<|startofprev|>``, see :func:`prompt_text`.
        boosts: ``(phrase, score)``: ranking adds score x occurrences to the log-probability.
        word_timestamps: Also align the top hypothesis's words.
        no_speech_threshold: As faster-whisper's: drop the decode if the no-speech
            probability is above this and the top mean log-probability below the next.
        log_prob_threshold: See ``no_speech_threshold``.

    Returns:
        The hypotheses (empty for silence) and, with ``word_timestamps``, faster-whisper's
        word dicts (``word``, ``start``, ``end``, ``probability``) of the first one.
    """
    from faster_whisper.audio import pad_or_trim
    from faster_whisper.transcribe import get_suppressed_tokens

    tokenizer = _tokenizer(model)
    features = model.feature_extractor(audio)
    frames = features.shape[-1] - 1  # the extractor appends one frame past the audio
    encoder_output = model.encode(pad_or_trim(features[:, :frames]))

    tokens = [tokenizer.sot_prev, *tokenizer.encode(" " + prompt)[-_MAX_PROMPT:]] if prompt else []
    sequence = [*tokens, *tokenizer.sot_sequence, tokenizer.no_timestamps]
    suppress = list(get_suppressed_tokens(tokenizer, (-1,)))
    # Wider than n: many of a beam's hypotheses differ only in punctuation or casing,
    # which Riva's alternatives (word sequences) do not.
    width = min(10, max(beam_size, 2 * n + 2))
    negative = [p for p, b in boosts if b < 0 and p.strip()]

    def search(suppressed: list[int]) -> Any:
        return model.model.generate(
            encoder_output,
            [sequence],
            beam_size=width,
            num_hypotheses=width,
            max_length=_MAX_LENGTH,
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=suppressed,
        )[0]

    result = search(suppress)
    scored = zip(result.sequences_ids, result.scores, strict=True)
    pool = [(list(ids), score * len(ids)) for ids, score in scored]
    if not pool:
        return [], []
    top_avg = pool[0][1] / (len(pool[0][0]) + 1)
    if result.no_speech_prob > no_speech_threshold and top_avg < log_prob_threshold:
        return [], []  # silence or noise, as faster-whisper's guard decides
    if negative:
        banned = search(sorted({*suppress, *_first_tokens(tokenizer, negative)}))
        # One scale for both searches: rescore everything without suppression.
        pool = [(ids, 0.0) for ids, _ in pool] + [(list(i), 0.0) for i in banned.sequences_ids]
        pool = [(ids, _rescore(model, encoder_output, sequence, ids, frames)) for ids, _ in pool]

    candidates: list[tuple[float, Candidate]] = []
    for ids, logprob in pool:
        text = tokenizer.decode(ids).strip()
        if not text:
            continue
        # Ranked per token, as the beam's own scores are (a total would favour short
        # hypotheses), so without boosts the order is that of the confidences.
        boost = sum(b * count_phrase(p, text) for p, b in boosts if b)
        key = (logprob + boost) / (len(ids) + 1)
        confidence = min(1.0, math.exp(logprob / (len(ids) + 1)))
        candidates.append((key, Candidate(text, tuple(ids), logprob, confidence)))
    candidates.sort(key=lambda kc: -kc[0])

    distinct: list[Candidate] = []
    seen: set[str] = set()
    for _, candidate in candidates:
        words = normalize(candidate.text)
        if words in seen:
            continue  # same words, other punctuation or casing: keep the better one only
        seen.add(words)
        distinct.append(candidate)
    distinct = distinct[:n]
    if not distinct or not word_timestamps:
        return distinct, []
    segments = [
        [
            {
                "seek": 0,
                "start": 0.0,
                "end": frames * model.feature_extractor.time_per_frame,
                "tokens": list(distinct[0].tokens),
            }
        ]
    ]
    model.add_word_timestamps(
        segments, tokenizer, encoder_output, frames, "\"'“¿([{-", "\"'.。,，!！?？:：”)]}、", 0.0
    )
    return distinct, list(segments[0][0].get("words", []))
