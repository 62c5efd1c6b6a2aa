"""Mapping between this package's models and the Riva ASR protobuf messages.

Pure functions, no I/O: options in, request messages out; response messages in, typed
events out. Field names follow ``riva/proto/riva_asr.proto``.
"""

from __future__ import annotations

from collections.abc import Iterable

import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_audio_pb2 as raudio

from .events import Alternative, Final, Partial, Word
from .markers import AudioItem, EndOfUtterance
from .options import RecognitionOptions

__all__ = [
    "FORCE_EOU",
    "audio_processed",
    "audio_request",
    "events_from_response",
    "finals_from_recognize_response",
    "recognition_config",
    "streaming_config",
]


_SCALAR_FIELDS = (
    ("sample_rate_hz", "sample_rate_hertz"),
    ("channels", "audio_channel_count"),
    ("model", "model"),
    ("max_alternatives", "max_alternatives"),
    ("automatic_punctuation", "enable_automatic_punctuation"),
    ("verbatim_transcripts", "verbatim_transcripts"),
    ("word_time_offsets", "enable_word_time_offsets"),
    ("profanity_filter", "profanity_filter"),
)
"""``RecognitionOptions`` fields copied as they are into ``RecognitionConfig`` fields."""


def recognition_config(options: RecognitionOptions) -> rasr.RecognitionConfig:
    """Build the Riva ``RecognitionConfig`` for ``options``; ``None`` fields stay unset."""
    config = rasr.RecognitionConfig(language_code=options.language_code)
    if options.encoding is not None:
        config.encoding = raudio.AudioEncoding.Value(options.encoding.value)
    for option, field in _SCALAR_FIELDS:
        value = getattr(options, option)
        if value is not None:
            setattr(config, field, value)
    if options.boosted_words:
        context = config.speech_contexts.add()
        context.phrases.extend(options.boosted_words)
        if options.boosted_score is not None:
            context.boost = options.boosted_score
    if options.endpointing is not None:
        ep = options.endpointing
        # Proto3 scalars have no presence: only fields that were given are written, and
        # the server treats 0 as "use the model's default".
        for name in (
            "start_history",
            "start_threshold",
            "stop_history",
            "stop_threshold",
            "stop_history_eou",
            "stop_threshold_eou",
        ):
            value = getattr(ep, name)
            if value is not None:
                setattr(config.endpointing_config, name, value)
    for key, value in options.custom_configuration:
        config.custom_configuration[key] = value
    return config


def streaming_config(options: RecognitionOptions) -> rasr.StreamingRecognitionConfig:
    """Build the ``StreamingRecognitionConfig`` sent as a stream's first message."""
    return rasr.StreamingRecognitionConfig(
        config=recognition_config(options), interim_results=options.interim_results
    )


FORCE_EOU = {"force_eou": "true"}
"""``StreamingRecognizeRequest.runtime_config`` that ends the utterance after the request's
audio and keeps the stream open (Riva 2.27; ``riva.client.realtime`` sends the same)."""


def audio_request(item: AudioItem) -> rasr.StreamingRecognizeRequest:
    """The streaming request for an audio chunk, or for an end-of-utterance marker."""
    if isinstance(item, EndOfUtterance):
        return rasr.StreamingRecognizeRequest(runtime_config=FORCE_EOU)
    return rasr.StreamingRecognizeRequest(audio_content=item)


def audio_processed(response: rasr.StreamingRecognizeResponse) -> float:
    """The most audio (seconds) any result of ``response`` says the server processed."""
    return max((r.audio_processed for r in response.results), default=0.0)


def _words(words: Iterable[rasr.WordInfo]) -> tuple[Word, ...]:
    return tuple(
        Word(word=w.word, start_ms=w.start_time, end_ms=w.end_time, confidence=w.confidence)
        for w in words
    )


def _alternatives(
    result: rasr.SpeechRecognitionResult | rasr.StreamingRecognitionResult,
) -> tuple[Alternative, ...]:
    return tuple(
        Alternative(text=alt.transcript.strip(), confidence=alt.confidence, words=_words(alt.words))
        for alt in result.alternatives
    )


def _final(result: rasr.SpeechRecognitionResult | rasr.StreamingRecognitionResult) -> Final:
    alternatives = _alternatives(result)
    best = alternatives[0] if alternatives else Alternative(text="")
    return Final(
        text=best.text,
        confidence=best.confidence,
        words=best.words,
        alternatives=alternatives,
        audio_processed=result.audio_processed,
        channel=result.channel_tag,
    )


def events_from_response(response: rasr.StreamingRecognizeResponse) -> list[Partial | Final]:
    """Turn one streaming response into events, finals first, then at most one partial.

    Riva may split an interim hypothesis over several results (a stable prefix and an
    unstable tail); they are joined into one :class:`Partial` whose stability is the
    lowest of its parts.
    """
    events: list[Partial | Final] = []
    interim_texts: list[str] = []
    stability = 1.0
    audio_processed = 0.0
    channel = 0
    for result in response.results:
        if result.is_final:
            events.append(_final(result))
        elif result.alternatives:
            interim_texts.append(result.alternatives[0].transcript.strip())
            stability = min(stability, result.stability)
            audio_processed = max(audio_processed, result.audio_processed)
            channel = result.channel_tag
    text = " ".join(t for t in interim_texts if t)
    if text:
        events.append(
            Partial(
                text=text, stability=stability, audio_processed=audio_processed, channel=channel
            )
        )
    return events


def finals_from_recognize_response(response: rasr.RecognizeResponse) -> list[Final]:
    """Turn an offline ``RecognizeResponse`` into one :class:`Final` per result."""
    return [_final(result) for result in response.results if result.alternatives]
