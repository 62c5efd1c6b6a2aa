"""The models and languages the embedded server answers to, and Riva's refusal of others.

Riva serves each deployed model under the name given to ``riva-build --name`` and refuses a
request for any other model or language with ``INVALID_ARGUMENT`` and the text
``"Error: Unavailable model requested. Lang: <language_code>, Type: <online|offline>"``
(NVIDIA's integration tests look for it). The embedded server does the same, and serves its
one engine under two names of its own (``<engine>-cpu-asr-streaming`` and
``-offline``) plus any **aliases** the operator configures, so a framework's default model
name (that of a NIM) reaches the embedded engine unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import riva.client.proto.riva_asr_pb2 as rasr

from ..errors import InvalidArgumentError
from .endpointer import EndpointParams

__all__ = ["DEFAULT_MODEL_ALIASES", "LANGUAGE_CODE", "MAX_ALTERNATIVES", "ModelCatalog"]

LANGUAGE_CODE = "en-US"
"""The one language the engine serves (Whisper tiny.en is English only)."""

MAX_ALTERNATIVES = 5
"""The longest n-best list returned; a request asking for more gets this many (the proto
lets the server return fewer than ``max_alternatives``)."""

DEFAULT_MODEL_ALIASES = (
    # livekit-plugins-nvidia's default model.
    "parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer",
    # The English streaming models of the Riva / NIM quick starts that frameworks name.
    "parakeet-1.1b-en-US-asr-streaming",
    "parakeet-0.6b-en-US-asr-streaming",
    "parakeet-ctc-1.1b-asr",
)
"""Model names served by the embedded engine unless the operator sets its own list."""


@dataclass(frozen=True, slots=True)
class ModelCatalog:
    """The model names the server answers to, derived from the engine's name.

    Attributes:
        engine: The engine's name, e.g. ``"whisper-tiny.en"``.
        aliases: Further names that select the engine, for streaming and offline alike.
    """

    engine: str
    aliases: tuple[str, ...] = DEFAULT_MODEL_ALIASES

    @property
    def streaming(self) -> str:
        return f"{self.engine}-cpu-asr-streaming"

    @property
    def offline(self) -> str:
        return f"{self.engine}-cpu-asr-offline"

    @property
    def names(self) -> tuple[str, ...]:
        """Every name a request's ``model`` may carry."""
        return (self.streaming, self.offline, *self.aliases)

    def check(self, model: str, language_code: str, *, streaming: bool) -> str:
        """The language code to report on results, once ``model`` and the language pass.

        Args:
            model: ``RecognitionConfig.model``; empty selects the engine.
            language_code: ``RecognitionConfig.language_code``; empty means en-US.
            streaming: A ``StreamingRecognize`` (Riva type ``online``) request.

        Raises:
            InvalidArgumentError: Riva's "Unavailable model requested" refusal.
        """
        language = language_code or LANGUAGE_CODE
        if language.lower() == LANGUAGE_CODE.lower() and (not model or model in self.names):
            return LANGUAGE_CODE
        kind = "online" if streaming else "offline"
        detail = f"model {model!r} is not served; " if model and model not in self.names else ""
        raise InvalidArgumentError(
            f"Error: Unavailable model requested. Lang: {language}, Type: {kind} "
            f"({detail}this server serves {LANGUAGE_CODE} as {', '.join(self.names)})"
        )

    def configs(
        self, endpoint: EndpointParams, model_name: str = ""
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        """The ``GetRivaSpeechRecognitionConfig`` answer, filtered by ``model_name``."""
        response = rasr.RivaSpeechRecognitionConfigResponse()
        models = [(self.streaming, True), (self.offline, False)]
        models += [(alias, True) for alias in self.aliases]
        for name, online in models:
            if model_name and model_name != name:
                continue
            config = response.model_config.add(model_name=name)
            config.parameters.update(self._parameters(endpoint, online))
            if name in self.aliases:
                config.parameters["alias_of"] = self.streaming
        return response

    def _parameters(self, endpoint: EndpointParams, online: bool) -> Mapping[str, str]:
        return {
            "type": "online" if online else "offline",
            "streaming": "true" if online else "false",
            "language_code": LANGUAGE_CODE,
            "sample_rate": "16000",
            "engine": f"faster-whisper/{self.engine}/int8/cpu",
            "vad": "silero-v6",
            "automatic_punctuation": "true",
            "word_time_offsets": "true",
            "max_alternatives": str(MAX_ALTERNATIVES),
            "start_history": str(endpoint.start_history),
            "start_threshold": str(endpoint.start_threshold),
            "stop_history": str(endpoint.stop_history),
            "stop_threshold": str(endpoint.stop_threshold),
            "stop_history_eou": str(endpoint.stop_history_eou),
            "stop_threshold_eou": str(endpoint.stop_threshold_eou),
        }
