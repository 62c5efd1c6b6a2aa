"""The transcription session object of NVIDIA's realtime API, as frozen models.

Its shape is the Riva ASR NIM's (``docs.nvidia.com/nim/riva/asr/latest/realtime-asr.html``):
what ``POST /v1/realtime/transcription_sessions`` returns, what
``transcription_session.update`` sets and what ``transcription_session.updated`` echoes.
NVIDIA's client (``riva.client.realtime.RealtimeClientASR``, nvidia-riva-client 2.27)
copies the POST answer, overrides some sections and sends the whole object back in its
update, so :class:`SessionPatch` accepts every field of :class:`TranscriptionSession`,
including the read-only ones, which it ignores.

Unknown fields are refused (``extra="forbid"``), so a misspelt setting is an error that
names it rather than a setting silently not applied. ``None`` means "Riva's default".
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from asr.options import EndpointingConfig, RecognitionOptions

__all__ = [
    "ClientSecret",
    "EndpointingSettings",
    "InputAudioParams",
    "InputAudioTranscription",
    "RecognitionSettings",
    "SessionPatch",
    "SessionSettings",
    "SpeakerDiarization",
    "TranscriptionSession",
    "WordBoosting",
    "WordBoostingEntry",
    "parse_custom_configuration",
]


class _Frozen(BaseModel):
    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_serialization_defaults_required=True
    )


def parse_custom_configuration(value: object) -> dict[str, str]:
    """``custom_configuration`` as a mapping.

    NVIDIA's client 2.27 sends it as the ``--custom-configuration`` string
    (``"key:value,key:value"``, spaces removed, as its ``_parse_custom_configuration``
    reads it); earlier clients sent a JSON object.

    Raises:
        ValueError: A pair that is not ``key:value``, or a value that is neither a
            string nor an object of strings.
    """
    if isinstance(value, dict):
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError("custom_configuration values must be strings")
        return dict(value)
    if not isinstance(value, str):
        raise ValueError("custom_configuration must be a 'key:value,...' string or an object")
    pairs: dict[str, str] = {}
    text = value.replace(" ", "")
    for pair in text.split(",") if text else ():
        parts = pair.split(":")
        if len(parts) != 2 or not parts[0]:
            raise ValueError(f"custom_configuration pair {pair!r} is not 'key:value'")
        pairs[parts[0]] = parts[1]
    return pairs


class InputAudioTranscription(_Frozen):
    """What to recognise.

    Attributes:
        language: BCP-47 language code (Riva ``language_code``).
        model: Riva model name; ``null`` (or ``""``) lets Riva choose.
        prompt: Accepted for compatibility; Riva's streaming API has no prompt, so it is
            not applied and the effective session shows ``""``.
    """

    language: str = Field(default="en-US", min_length=2, max_length=35)
    model: str | None = Field(default=None, max_length=200)
    prompt: str = Field(default="", max_length=4000)

    @field_validator("model")
    @classmethod
    def _empty_model_is_default(cls, value: str | None) -> str | None:
        return value or None


class InputAudioParams(_Frozen):
    """The audio the client sends.

    Attributes:
        sample_rate_hz: Rate of ``pcm16`` audio; resampled to 16 kHz for Riva. With
            ``input_audio_format`` ``none`` the WAV header's rate applies instead.
        num_channels: Only 1: Riva recognises mono audio.
    """

    sample_rate_hz: int = Field(default=16_000, ge=8_000, le=192_000)
    num_channels: int = Field(default=1, ge=1, le=8)


class RecognitionSettings(_Frozen):
    """Riva ``RecognitionConfig`` fields, named as the NIM names them."""

    max_alternatives: int | None = Field(default=None, ge=1, le=10)
    enable_automatic_punctuation: bool | None = None
    enable_word_time_offsets: bool | None = None
    enable_profanity_filter: bool | None = None
    enable_verbatim_transcripts: bool | None = None
    custom_configuration: dict[str, str] = Field(default_factory=dict, max_length=64)

    @field_validator("custom_configuration", mode="before")
    @classmethod
    def _custom_configuration(cls, value: object) -> dict[str, str]:
        return parse_custom_configuration(value)


class SpeakerDiarization(_Frozen):
    """Accepted only disabled: the gateway's Riva options have no diarization."""

    enable_speaker_diarization: bool = False
    max_speaker_count: int = Field(default=8, ge=1, le=32)


class WordBoostingEntry(_Frozen):
    """Phrases to favour and how strongly (Riva ``SpeechContext``)."""

    phrases: tuple[Annotated[str, Field(min_length=1, max_length=100)], ...] = Field(
        max_length=1000
    )
    boost: float = Field(default=1.0, ge=-100.0, le=100.0)


class WordBoosting(_Frozen):
    """Word boosting; the entries must share one ``boost`` (one Riva speech context)."""

    enable_word_boosting: bool = False
    word_boosting_list: tuple[WordBoostingEntry, ...] = Field(default=(), max_length=100)


_History = Annotated[int | None, Field(ge=0, le=10_000)]
_Threshold = Annotated[float | None, Field(ge=0.0, le=1.0)]


class EndpointingSettings(_Frozen):
    """Riva ``EndpointingConfig``. ``0`` is the NIM's "unset" (its POST answer lists
    zeros) and means Riva's default, like ``null``; negative values are refused (NVIDIA's
    client 2.27 stopped sending its ``-1`` sentinels because the NIM refuses them)."""

    start_history: _History = None
    start_threshold: _Threshold = None
    stop_history: _History = None
    stop_threshold: _Threshold = None
    stop_history_eou: _History = None
    stop_threshold_eou: _Threshold = None

    def to_options(self) -> EndpointingConfig | None:
        """The Riva endpointing options, ``None`` when every field is left to Riva."""
        values = {k: v for k, v in self.model_dump().items() if v}
        return EndpointingConfig(**values) if values else None


class SessionSettings(_Frozen):
    """The settable part of a transcription session.

    Attributes:
        input_audio_format: ``pcm16``: raw little-endian PCM16 mono at
            ``input_audio_params.sample_rate_hz``. ``none``: a WAV file's bytes as read
            (header first), as NVIDIA's client sends a file; the header gives the rate,
            the samples must be PCM16 mono.
    """

    input_audio_format: Literal["pcm16", "none"] = "pcm16"
    input_audio_transcription: InputAudioTranscription = InputAudioTranscription()
    input_audio_params: InputAudioParams = InputAudioParams()
    recognition_config: RecognitionSettings = RecognitionSettings()
    speaker_diarization: SpeakerDiarization = SpeakerDiarization()
    word_boosting: WordBoosting = WordBoosting()
    endpointing_config: EndpointingSettings = EndpointingSettings()

    @model_validator(mode="after")
    def _supported(self) -> SessionSettings:
        if self.input_audio_params.num_channels != 1:
            raise ValueError(
                f"input_audio_params.num_channels {self.input_audio_params.num_channels} is "
                "not supported: send mono audio (num_channels 1)"
            )
        if self.speaker_diarization.enable_speaker_diarization:
            raise ValueError("speaker_diarization is not supported by this gateway")
        boosts = {e.boost for e in self.word_boosting.word_boosting_list}
        if self.word_boosting.enable_word_boosting and len(boosts) > 1:
            raise ValueError(
                "word_boosting_list entries with different boost values are not supported; "
                "use one boost for all phrases"
            )
        return self

    def describe(self, session_id: str) -> TranscriptionSession:
        """These settings as the session ``session_id``, as ``...updated`` sends it."""
        values = self.model_dump(include=set(SessionSettings.model_fields))
        values["input_audio_transcription"]["prompt"] = ""  # not applied: see the model
        return TranscriptionSession(id=session_id, **values)

    def recognition_options(self) -> RecognitionOptions:
        """The Riva request options (the audio is always sent as 16 kHz PCM16 mono)."""
        rec = self.recognition_config
        boosting = self.word_boosting
        entries = boosting.word_boosting_list if boosting.enable_word_boosting else ()
        words = tuple(p for e in entries for p in e.phrases)
        return RecognitionOptions(
            language_code=self.input_audio_transcription.language,
            model=self.input_audio_transcription.model,
            sample_rate_hz=16_000,
            channels=1,
            max_alternatives=rec.max_alternatives,
            automatic_punctuation=rec.enable_automatic_punctuation,
            word_time_offsets=rec.enable_word_time_offsets,
            profanity_filter=rec.enable_profanity_filter,
            verbatim_transcripts=rec.enable_verbatim_transcripts,
            boosted_words=words,
            boosted_score=entries[0].boost if words else None,
            endpointing=self.endpointing_config.to_options(),
            custom_configuration=tuple(rec.custom_configuration.items()),
            interim_results=True,
        )


class ClientSecret(_Frozen):
    """The short-lived credential a client opens the WebSocket with.

    Attributes:
        value: The token, offered as the subprotocol ``realtime-token.<value>``.
        expires_at: Unix time (seconds) after which it is refused.
    """

    value: str
    expires_at: int


class TranscriptionSession(SessionSettings):
    """A session as the server describes it: the POST answer and the ``session`` of
    ``transcription_session.updated`` (there ``client_secret`` is always ``null``)."""

    id: str
    object: Literal["realtime.transcription_session"] = "realtime.transcription_session"
    modalities: tuple[Literal["text"], ...] = ("text",)
    client_secret: ClientSecret | None = None


_READ_ONLY = frozenset({"id", "object", "modalities", "client_secret"})
"""Fields of :class:`TranscriptionSession` a client sends back (NVIDIA's does) that an
update does not set."""

_OPENAI_IGNORED = frozenset(
    {"expires_at", "include", "input_audio_noise_reduction", "turn_detection"}
)
"""OpenAI's transcription-session fields: accepted from OpenAI-style clients, not
applied (Riva endpoints utterances itself; ``endpointing_config`` tunes it)."""


class SessionPatch(SessionSettings):
    """The ``session`` of ``transcription_session.update``: the fields present replace
    those of the session, section by section (see :meth:`apply`).

    ``custom_configuration`` may also come at the top level, where clients before
    nvidia-riva-client 2.27 put it; it merges into ``recognition_config``.
    """

    # Read-only and OpenAI fields: accepted, never applied or echoed.
    id: str | None = Field(default=None, exclude=True)
    object: str | None = Field(default=None, exclude=True)
    modalities: list[str] | None = Field(default=None, exclude=True)
    client_secret: Any = Field(default=None, exclude=True)
    expires_at: Any = Field(default=None, exclude=True)
    include: Any = Field(default=None, exclude=True)
    input_audio_noise_reduction: Any = Field(default=None, exclude=True)
    turn_detection: Any = Field(default=None, exclude=True)

    @model_validator(mode="before")
    @classmethod
    def _top_level_custom_configuration(cls, data: Any) -> Any:
        if isinstance(data, dict) and "custom_configuration" in data:
            data = dict(data)
            custom = data.pop("custom_configuration")
            section = data.get("recognition_config")
            section = dict(section) if isinstance(section, dict) else {}
            section.setdefault("custom_configuration", custom)
            data["recognition_config"] = section
        return data

    def apply(self, current: SessionSettings) -> SessionSettings | str:
        """``current`` with this update's fields (a section given in part keeps the
        fields it does not name), or why the result is not a session this gateway
        supports (the first validation error's message)."""
        ignored = set(_READ_ONLY | _OPENAI_IGNORED)
        changes = self.model_dump(exclude_unset=True, exclude=ignored)
        merged = current.model_dump(include=set(SessionSettings.model_fields))
        for key, value in changes.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = merged[key] | value
            else:
                merged[key] = value
        try:
            return SessionSettings.model_validate(merged)
        except ValidationError as exc:
            return str(exc.errors()[0]["msg"]).removeprefix("Value error, ")
