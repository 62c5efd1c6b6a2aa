"""Word error rate with a pinned text normaliser.

Transcripts and references are compared after Whisper's English normaliser
(``whisper-normalizer`` 0.1.15, the text normaliser from openai/whisper): lower case, no
punctuation, numbers as digits, British/American spellings unified. Without it, a
reference saying "eighteen sixty eight" and a transcript saying "1868" would count as
three errors.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

from .extras import require_extra

require_extra("eval", "asr.wer")

import jiwer
from whisper_normalizer.english import EnglishTextNormalizer

__all__ = ["normalize", "word_error_rate"]


@cache
def _normalizer() -> EnglishTextNormalizer:
    return EnglishTextNormalizer()


def normalize(text: str) -> str:
    """Normalise English text for scoring."""
    return " ".join(str(_normalizer()(text)).split())


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """Corpus WER (total edits / total reference words) after :func:`normalize`.

    Raises:
        ValueError: The sequences differ in length, or every reference is empty.
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    refs = [normalize(r) for r in references]
    hyps = [normalize(h) for h in hypotheses]
    if not any(refs):
        raise ValueError("every reference is empty after normalisation")
    # jiwer refuses empty references; score those pairs as pure insertions.
    pairs = [(r, h) for r, h in zip(refs, hyps, strict=True) if r]
    insertions = sum(len(h.split()) for r, h in zip(refs, hyps, strict=True) if not r)
    output = jiwer.process_words([r for r, _ in pairs], [h for _, h in pairs])
    errors = output.substitutions + output.deletions + output.insertions + insertions
    words = sum(len(r.split()) for r, _ in pairs)
    return errors / words
