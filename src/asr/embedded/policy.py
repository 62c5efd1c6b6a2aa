"""The recogniser's policy: how a stream is cut into utterances, when partials are decoded,
and what an interim result's ``stability`` says.

Interim results (``StreamingRecognitionConfig.interim_results``) follow the audio clock:
a partial decode is due every ``partial_interval_ms`` of utterance audio however fast the
audio arrives; while the engine is busy only the newest waits (latest wins), finals are
never dropped. An interim's ``stability`` is the share of its words the previous interim
already had, kept within [:data:`MIN_STABILITY`, :data:`MAX_STABILITY`]; the first pass
at the end of an utterance (Riva's ``stop_history_eou``) is an interim of stability 1.
When audio comes faster than partials can be decoded, an utterance longer than
:data:`LEAD_INTERIM_MIN_S` still gets that first pass as an interim before its final.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .custom_config import CustomConfig
from .endpointer import EndpointParams

__all__ = [
    "LEAD_INTERIM_MIN_S",
    "MAX_STABILITY",
    "MIN_STABILITY",
    "PARTIAL_INTERVAL_MS",
    "RecognizerConfig",
    "for_request",
    "stability",
]

PARTIAL_INTERVAL_MS = 960
"""Utterance audio between two partial decodes by default. Each draft costs ~0.12 CPU-s
(tiny.en int8, one thread), so drafts set the server's CPU per audio second: against
480 ms, 0.60x the CPU at one stream with the same finals (41 clips, interleaved), and
first partials as soon (an empty first draft is retried sooner, see
``RecognizerConfig.first_partial_retry_ms``)."""

LEAD_INTERIM_MIN_S = 1.0
"""A final of an utterance longer than this always follows at least one interim result."""

MIN_STABILITY = 0.01
"""Stability of an interim that shares no words with the previous one: 0 would mean
"unset" (riva_asr.proto), so the least stable interim still says 0.01."""

MAX_STABILITY = 0.9
"""Stability of a partial decode that repeats the previous one; 1.0 is kept for the first
pass at the end of an utterance, whose text the final keeps unless speech resumes."""


def stability(agree: int, words: int) -> float:
    """The share of an interim's words the previous interim already had, in
    [MIN_STABILITY, MAX_STABILITY]."""
    return min(MAX_STABILITY, max(MIN_STABILITY, agree / words))


@dataclass(frozen=True, slots=True)
class RecognizerConfig:
    """How a stream is cut into utterances and when it is decoded.

    Attributes:
        endpoint: Endpointing parameters (Riva ``EndpointingConfig`` merged onto defaults).
        interim_results: Produce partial decodes while speech goes on.
        partial_interval_ms: Utterance audio between two partial decodes, on the audio
            clock: the schedule is the same whatever pace the audio arrives at.
        first_partial_ms: Utterance audio (pre-roll included) before the first partial
            decode: earlier than the interval, as the first words are what a person
            waits to see.
        first_partial_retry_ms: Utterance audio after a partial decode that gave the
            utterance no interim (Whisper heard nothing in its first few hundred ms, or
            an earlier utterance's final was still being decoded) before the next one,
            until the utterance has its first interim: sooner than the interval.
        speculative: Start the final's decode at the first-pass end of utterance.
        preroll_ms: Audio kept before the detected speech start (soft onsets, VAD lag).
        postroll_ms: Audio kept after the last speech frame; ``None`` means the
            end-of-utterance window, so a speculative decode covers exactly the audio the
            final would, and can be reused as is.
        min_speech_ms: Utterances with less speech than this are dropped undecoded: clicks
            and breaths that would make Whisper hallucinate.
        min_partial_speech_ms: Speech (VAD frames from the speech start on) a partial's
            audio must hold. Over the pre-roll's pause and the first syllable alone
            Whisper hears "Thank you." or "Like you."; the pre-roll is not speech. Of 41
            first drafts (librispeech_mini, ljspeech32) after 200 ms of speech 5 looped
            ("this is this is ..."); after 300 ms one did, as after 500 ms two, and about
            as many began the reference (17 against 18): the first partial comes 200 ms
            sooner (issue 14: 500 ms p95 after the speech onset).
        min_new_speech_ms: Speech (VAD frames) a partial must add to the previous
            partial's audio: with less, its hypothesis would hardly change. Of 530
            partials after an utterance's first (librispeech_mini, ljspeech32, streamed),
            18 had 160 ms or less.
        soft_max_utterance_s: Past this length an utterance is cut at the first
            non-speech frame.
        max_utterance_s: Hard cut, below Whisper's 30 s window including pre-roll.
    """

    endpoint: EndpointParams = EndpointParams()
    interim_results: bool = True
    partial_interval_ms: int = PARTIAL_INTERVAL_MS
    first_partial_ms: int = 600
    first_partial_retry_ms: int = 240
    speculative: bool = True
    preroll_ms: int = 300
    postroll_ms: int | None = None
    min_speech_ms: int = 200
    min_partial_speech_ms: int = 300
    min_new_speech_ms: int = 192
    soft_max_utterance_s: float = 20.0
    max_utterance_s: float = 28.0


def for_request(config: RecognizerConfig, custom: CustomConfig) -> RecognizerConfig:
    """``config`` with a request's ``neural_vad.*`` custom configuration applied."""
    return replace(
        config,
        preroll_ms=config.preroll_ms if custom.pad_onset_ms is None else custom.pad_onset_ms,
        postroll_ms=config.postroll_ms if custom.pad_offset_ms is None else custom.pad_offset_ms,
        min_speech_ms=(
            config.min_speech_ms if custom.min_speech_ms is None else custom.min_speech_ms
        ),
    )
