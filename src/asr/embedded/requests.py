"""Riva request messages in, validated options out (:mod:`.responses` builds the answers).

Pure functions over protobuf messages (``riva/proto/riva_asr.proto``). Anything the server
cannot honour raises :class:`~asr.errors.InvalidArgumentError` (or its
:class:`~asr.errors.AudioFormatError` subclass) with a message that says what to change;
the servicer turns it into ``INVALID_ARGUMENT``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace

import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_audio_pb2 as raudio

from ..errors import InvalidArgumentError
from .endpointer import EndpointParams

__all__ = [
    "ModelCatalog",
    "RequestOptions",
    "parse_config",
    "parse_runtime_config",
]

_ENGLISH = re.compile(r"^en([-_][A-Za-z0-9]{2,8})*$", re.IGNORECASE)
_STREAMING_ENCODINGS = ("LINEAR_PCM", "MULAW", "ALAW")
_OFFLINE_ENCODINGS = (*_STREAMING_ENCODINGS, "FLAC", "OGGOPUS")
MIN_SAMPLE_RATE = 1_000
MAX_SAMPLE_RATE = 384_000
MAX_CHANNELS = 8


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """The model names the server answers to, derived from the engine's name.

    Attributes:
        engine: The engine's name, e.g. ``"whisper-tiny.en"``.
    """

    engine: str

    @property
    def streaming(self) -> str:
        return f"{self.engine}-cpu-asr-streaming"

    @property
    def offline(self) -> str:
        return f"{self.engine}-cpu-asr-offline"

    def configs(
        self,
        endpoint: EndpointParams,
        model_name: str = "",
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        """The ``GetRivaSpeechRecognitionConfig`` answer, filtered by ``model_name``."""
        response = rasr.RivaSpeechRecognitionConfigResponse()
        for name, online in ((self.streaming, True), (self.offline, False)):
            if model_name and model_name != name:
                continue
            config = response.model_config.add(model_name=name)
            config.parameters.update(
                {
                    "type": "online" if online else "offline",
                    "streaming": "true" if online else "false",
                    "language_code": "en-US",
                    "sample_rate": "16000",
                    "engine": f"faster-whisper/{self.engine}/int8/cpu",
                    "vad": "silero-v6",
                    "automatic_punctuation": "true",
                    "word_time_offsets": "true",
                    "start_history": str(endpoint.start_history),
                    "start_threshold": str(endpoint.start_threshold),
                    "stop_history": str(endpoint.stop_history),
                    "stop_threshold": str(endpoint.stop_threshold),
                    "stop_history_eou": str(endpoint.stop_history_eou),
                    "stop_threshold_eou": str(endpoint.stop_threshold_eou),
                }
            )
        return response


@dataclass(frozen=True, slots=True)
class RequestOptions:
    """A validated ``RecognitionConfig``.

    Attributes:
        encoding: ``"LINEAR_PCM"``, ``"MULAW"``, ``"ALAW"``, ``"FLAC"``, ``"OGGOPUS"`` or
            ``None`` (unset: sniff a WAV header).
        sample_rate: ``None`` when unset (a WAV header must supply it).
        channels: ``None`` when unset.
        punctuation: ``enable_automatic_punctuation``.
        word_time_offsets: ``enable_word_time_offsets``.
        hotwords: ``speech_contexts`` phrases joined for the engine, or ``None``.
        endpoint: ``endpointing_config`` merged onto the server defaults.
        language_code: The language asked for (``en-US`` when unset), echoed on results.
    """

    encoding: str | None
    sample_rate: int | None
    channels: int | None
    punctuation: bool
    word_time_offsets: bool
    hotwords: str | None
    endpoint: EndpointParams
    language_code: str = "en-US"


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
    language = config.language_code or "en-US"
    if not _ENGLISH.match(language):
        raise InvalidArgumentError(
            f"language_code {language!r} is not supported: this server recognises English "
            "only (en, en-US, en-GB, ...)"
        )
    names = (catalog.streaming, catalog.offline)
    if config.model and config.model not in names:
        raise InvalidArgumentError(f"unknown model {config.model!r}; available: {', '.join(names)}")
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
    phrases = [p.strip() for ctx in config.speech_contexts for p in ctx.phrases if p.strip()]
    return RequestOptions(
        encoding=encoding,
        sample_rate=rate,
        channels=channels,
        punctuation=config.enable_automatic_punctuation,
        word_time_offsets=config.enable_word_time_offsets,
        hotwords=" ".join(phrases) or None,
        endpoint=_endpoint(config, defaults),
        language_code=language,
    )


def _endpoint(config: rasr.RecognitionConfig, defaults: EndpointParams) -> EndpointParams:
    if not config.HasField("endpointing_config"):
        return defaults
    ep = config.endpointing_config
    for name in ("start_history", "stop_history", "stop_history_eou"):
        if not 0 <= getattr(ep, name) <= 10_000:
            raise InvalidArgumentError(
                f"endpointing_config.{name} must be in [0, 10000] ms, got {getattr(ep, name)}"
            )
    for name in ("start_threshold", "stop_threshold", "stop_threshold_eou"):
        if not 0.0 <= getattr(ep, name) <= 1.0:
            raise InvalidArgumentError(
                f"endpointing_config.{name} must be in [0, 1], got {getattr(ep, name)}"
            )
    if ep.stop_history:
        # The client chose its stop window: honour it exactly, without the longer window
        # for short utterances (see asr.embedded.endpointer).
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
