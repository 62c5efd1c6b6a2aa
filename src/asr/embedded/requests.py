"""Riva request messages in, validated options out (:mod:`.responses` builds the answers).

Pure functions over protobuf messages (``riva/proto/riva_asr.proto``). Anything the server
cannot honour raises :class:`~asr.errors.InvalidArgumentError` (or its
:class:`~asr.errors.AudioFormatError` subclass) with a message that says what to change;
the servicer turns it into ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_audio_pb2 as raudio

from ..errors import InvalidArgumentError
from .catalog import MAX_ALTERNATIVES, ModelCatalog
from .custom_config import MAX_WINDOW_MS, CustomConfig, parse_custom_configuration
from .endpointer import EndpointParams

__all__ = [
    "RequestOptions",
    "parse_config",
    "parse_runtime_config",
]

_STREAMING_ENCODINGS = ("LINEAR_PCM", "MULAW", "ALAW", "FLAC", "OGGOPUS")
_OFFLINE_ENCODINGS = _STREAMING_ENCODINGS
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """A validated ``RecognitionConfig``.

    Attributes:
        encoding: ``"LINEAR_PCM"``, ``"MULAW"``, ``"ALAW"``, ``"FLAC"``, ``"OGGOPUS"`` or
            ``None`` (unset: sniff the container).
        sample_rate: ``None`` when unset (a WAV header must supply it).
        channels: ``None`` when unset.
        punctuation: ``enable_automatic_punctuation``.
        word_time_offsets: ``enable_word_time_offsets``.
        boosts: ``speech_contexts`` phrases with their ``boost`` (0 when unset).
        endpoint: ``endpointing_config`` merged onto the server defaults.
        language_code: The language served, echoed on results.
        max_alternatives: Hypotheses per final, 1 to :data:`~.catalog.MAX_ALTERNATIVES`.
        profanity_filter: Mask profanities, first letter kept (``profanity_filter``).
        verbatim: Spoken form, numbers as words (``verbatim_transcripts``); else the
            written form.
        custom: The parsed ``custom_configuration``.
    """

    encoding: str | None
    sample_rate: int | None
    channels: int | None
    punctuation: bool
    word_time_offsets: bool
    boosts: tuple[tuple[str, float], ...]
    endpoint: EndpointParams
    language_code: str = "en-US"
    max_alternatives: int = 1
    profanity_filter: bool = False
    verbatim: bool = False
    custom: CustomConfig = CustomConfig()


def parse_config(
    config: rasr.RecognitionConfig,
    *,
    streaming: bool,
    catalog: ModelCatalog,
    defaults: EndpointParams,
) -> RequestOptions:
    """Validate a ``RecognitionConfig``.

    Raises:
        InvalidArgumentError: A field the server cannot honour.
    """
    language = catalog.check(config.model, config.language_code, streaming=streaming)
    if config.diarization_config.enable_speaker_diarization:
        raise InvalidArgumentError(
            "speaker diarization is not available on this server (it has no speaker "
            "model); leave diarization_config.enable_speaker_diarization false"
        )
    if config.enable_separate_recognition_per_channel:
        raise InvalidArgumentError(
            "enable_separate_recognition_per_channel is not supported (Riva does not "
            "support it either); leave it false"
        )
    if config.max_alternatives < 0:
        raise InvalidArgumentError(
            f"max_alternatives must not be negative, got {config.max_alternatives}"
        )
    encoding: str | None = None
    if config.encoding != raudio.AudioEncoding.ENCODING_UNSPECIFIED:
        encoding = raudio.AudioEncoding.Name(config.encoding)
    allowed = _STREAMING_ENCODINGS if streaming else _OFFLINE_ENCODINGS
    if encoding is not None and encoding not in allowed:
        kind = "streaming" if streaming else "offline"
        raise InvalidArgumentError(
            f"encoding {encoding} is not supported for {kind} recognition; use {', '.join(allowed)}"
        )
    rate = config.sample_rate_hertz or None
    if rate is not None and not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise InvalidArgumentError(
            f"sample_rate_hertz {rate} is out of range [{MIN_SAMPLE_RATE}, {MAX_SAMPLE_RATE}]"
        )
    channels = config.audio_channel_count or None
    if channels is not None and not 1 <= channels <= MAX_CHANNELS:
        raise InvalidArgumentError(
            f"audio_channel_count {channels} is out of range [1, {MAX_CHANNELS}]"
        )
    custom = parse_custom_configuration(config.custom_configuration)
    boosts = tuple(
        (p.strip(), ctx.boost) for ctx in config.speech_contexts for p in ctx.phrases if p.strip()
    )
    return RequestOptions(
        encoding=encoding,
        sample_rate=rate,
        channels=channels,
        punctuation=config.enable_automatic_punctuation,
        word_time_offsets=config.enable_word_time_offsets,
        boosts=boosts,
        endpoint=_endpoint(config, defaults, custom),
        language_code=language,
        max_alternatives=min(MAX_ALTERNATIVES, max(1, config.max_alternatives)),
        profanity_filter=config.profanity_filter,
        verbatim=config.verbatim_transcripts,
        custom=custom,
    )


def _endpoint(
    config: rasr.RecognitionConfig, defaults: EndpointParams, custom: CustomConfig
) -> EndpointParams:
    if custom.vad_onset is not None:
        defaults = replace(defaults, threshold=custom.vad_onset)
    if custom.vad_offset is not None:
        defaults = replace(defaults, neg_threshold=custom.vad_offset)
    if custom.min_silence_ms:
        defaults = replace(defaults, stop_history=custom.min_silence_ms, short_stop_history=0)
    if custom.short_stop_history is not None:
        defaults = replace(defaults, short_stop_history=custom.short_stop_history)
    if not config.HasField("endpointing_config"):
        return defaults
    ep = config.endpointing_config
    for name in ("start_history", "stop_history", "stop_history_eou"):
        if not 0 <= getattr(ep, name) <= MAX_WINDOW_MS:
            raise InvalidArgumentError(
                f"endpointing_config.{name} must be in [0, {MAX_WINDOW_MS}] ms, "
                f"got {getattr(ep, name)}"
            )
    for name in ("start_threshold", "stop_threshold", "stop_threshold_eou"):
        if not 0.0 <= getattr(ep, name) <= 1.0:
            raise InvalidArgumentError(
                f"endpointing_config.{name} must be in [0, 1], got {getattr(ep, name)}"
            )
    if ep.stop_history and custom.short_stop_history is None:
        # The client chose its stop window: honour it exactly, without the longer window
        # for short utterances (see asr.embedded.endpointer), unless it asked for one.
        defaults = replace(defaults, short_stop_history=0)
    # 0 means "the server's default" (proto3 has no presence for scalars).
    return defaults.merged(
        start_history=ep.start_history,
        start_threshold=ep.start_threshold,
        stop_history=ep.stop_history,
        stop_threshold=ep.stop_threshold,
        stop_history_eou=ep.stop_history_eou,
        stop_threshold_eou=ep.stop_threshold_eou,
    )


RUNTIME_FORCE_EOU = "force_eou"
"""The one ``StreamingRecognizeRequest.runtime_config`` key understood (Riva 2.27's
``riva.client.realtime`` sends ``{"force_eou": "true"}`` with an audio chunk)."""


def parse_runtime_config(runtime_config: Mapping[str, str]) -> bool:
    """Whether a request's ``runtime_config`` forces an end of utterance.

    Raises:
        InvalidArgumentError: A key other than ``force_eou``, or a value other than
            ``true``/``false``: refused rather than accepted and ignored.
    """
    force = False
    for key, value in runtime_config.items():
        if key != RUNTIME_FORCE_EOU:
            raise InvalidArgumentError(
                f"runtime_config key {key!r} is not supported; this server understands "
                f"only {RUNTIME_FORCE_EOU!r}"
            )
        if value.strip().lower() not in ("true", "false"):
            raise InvalidArgumentError(
                f"runtime_config {RUNTIME_FORCE_EOU!r} must be 'true' or 'false', got {value!r}"
            )
        force = value.strip().lower() == "true"
    return force
