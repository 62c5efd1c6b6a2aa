"""Results in, Riva response messages out, with the metadata Riva puts on every result.

Riva (``riva/proto/riva_asr.proto``) echoes the request's ``id`` on every response (a new
UUID when the client sent none), sets ``channel_tag`` (1 for mono audio) and the
alternative's ``language_code``, ends a final's transcript with a space (clients that join
results without a separator rely on it), sets ``stability`` on interim results only, and
reports the whole audio's length as an offline result's ``audio_processed``.

Text is shaped as the request asks: the spoken form for ``verbatim_transcripts`` (numbers
as words), else Whisper's written form; profanities masked for ``profanity_filter``
(:mod:`.text_forms`); lower case without punctuation unless
``enable_automatic_punctuation``. A final carries up to ``max_alternatives`` hypotheses,
word times on the first only; with the ``vad_probabilities`` custom configuration key every
streaming result carries ``pipeline_states``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import riva.client.proto.riva_asr_pb2 as rasr

from .engine import Hypothesis, Transcription, WordTiming
from .requests import RequestOptions
from .results import FinalResult, InterimResult
from .text_forms import mask_profanity, spoken_form

__all__ = [
    "final_result",
    "format_text",
    "interim_result",
    "progress_response",
    "shape_text",
    "speech_results",
]

CHANNEL_TAG = 1
"""Riva numbers channels from 1; the embedded server hears one (mixed to mono)."""

_PUNCT = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[^\w\s'.,$%&@+#/*-]|(?<=\s)-+|-+(?=\s|$)|^-+")
_HYPHEN = re.compile(r"(?<=\w)-(?=\w)")
_SPACES = re.compile(r"\s+")


def format_text(text: str, punctuation: bool) -> str:
    """Whisper's text as Riva would return it.

    With ``punctuation`` the cased, punctuated text as is. Without it, lower case with
    punctuation removed but apostrophes, numbers (``3.5``, ``1,000``) and the asterisks of
    masked words kept, as Riva returns without its punctuation model.
    """
    if punctuation:
        return _SPACES.sub(" ", text).strip()
    text = _HYPHEN.sub(" ", text.lower())
    text = _PUNCT.sub(" ", text)
    return _SPACES.sub(" ", text).strip(" '")


def shape_text(text: str, options: RequestOptions) -> str:
    """Engine text as the request wants it: spoken or written form, profanities masked or
    not, punctuated or not."""
    if options.verbatim:
        text = spoken_form(text)
    if options.profanity_filter:
        text = mask_profanity(text)
    return format_text(text, options.punctuation)


def _alternatives(
    result: Transcription,
    options: RequestOptions,
) -> list[rasr.SpeechRecognitionAlternative]:
    hypotheses = result.alternatives or (Hypothesis(result.text, result.confidence),)
    out: list[rasr.SpeechRecognitionAlternative] = []
    seen: set[str] = set()
    for hypothesis in hypotheses:
        text = shape_text(hypothesis.text, options)
        if text in seen:
            continue  # distinct as the client reads them, e.g. without punctuation
        seen.add(text)
        alt = rasr.SpeechRecognitionAlternative(
            transcript=f"{text} " if text else "",
            confidence=hypothesis.confidence,
            language_code=[options.language_code],
        )
        if options.word_time_offsets and not out:  # riva_asr.proto: "only in the top hypothesis"
            alt.words.extend(_words(result.words, options))
        out.append(alt)
        if len(out) == options.max_alternatives:
            break
    return out


def _words(words: Iterable[WordTiming], options: RequestOptions) -> list[rasr.WordInfo]:
    out = []
    for w in words:
        text = shape_text(w.word, options)
        if text:
            out.append(
                rasr.WordInfo(
                    word=text,
                    start_time=round(w.start * 1000),
                    end_time=round(w.end * 1000),
                    confidence=w.probability,
                )
            )
    return out


def _streaming(
    request_id: str, vad: Sequence[float] | None = None, **result: Any
) -> rasr.StreamingRecognizeResponse:
    """A streaming response with one result, stamped with the request id and channel, and
    carrying the VAD probabilities ``vad`` as ``pipeline_states`` when given."""
    response = rasr.StreamingRecognizeResponse()
    response.id.value = request_id
    added = response.results.add(channel_tag=CHANNEL_TAG, **result)
    if vad is not None:
        added.pipeline_states.vad_probabilities.extend(vad)
    return response


def interim_result(
    result: InterimResult,
    options: RequestOptions,
    request_id: str,
    vad: Sequence[float] | None = None,
) -> rasr.StreamingRecognizeResponse:
    """A streaming response carrying one partial (``is_final`` false)."""
    return _streaming(
        request_id,
        vad,
        alternatives=[
            rasr.SpeechRecognitionAlternative(
                transcript=shape_text(result.text, options),
                language_code=[options.language_code],
            )
        ],
        is_final=False,
        stability=result.stability,
        audio_processed=result.audio_processed,
    )


def final_result(
    result: FinalResult,
    options: RequestOptions,
    request_id: str,
    vad: Sequence[float] | None = None,
) -> rasr.StreamingRecognizeResponse:
    """A streaming response carrying one final (``is_final`` true, no ``stability``)."""
    return _streaming(
        request_id,
        vad,
        alternatives=_alternatives(result.transcription, options),
        is_final=True,
        audio_processed=result.audio_processed,
    )


def progress_response(
    audio_processed: float, request_id: str, vad: Sequence[float] | None = None
) -> rasr.StreamingRecognizeResponse:
    """A streaming response with no transcript: the server is alive and has processed
    ``audio_processed`` seconds (sent for a forced end that found no speech, and while
    finals are still being decoded after the client half-closed)."""
    return _streaming(request_id, vad, is_final=False, audio_processed=audio_processed)


def speech_results(
    results: Iterable[FinalResult],
    options: RequestOptions,
    request_id: str,
    audio_seconds: float,
) -> rasr.RecognizeResponse:
    """The offline ``RecognizeResponse``: one result per utterance, each reporting the
    whole audio (``audio_seconds``) as processed."""
    response = rasr.RecognizeResponse()
    response.id.value = request_id
    for result in results:
        response.results.add(
            alternatives=_alternatives(result.transcription, options),
            channel_tag=CHANNEL_TAG,
            audio_processed=audio_seconds,
        )
    return response
