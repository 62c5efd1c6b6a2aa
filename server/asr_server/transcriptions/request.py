"""The form fields of ``POST /v1/audio/transcriptions``, validated, and the Riva options
they ask for.

What each OpenAI field becomes (``openai`` SDK 3.x sends every field as a multipart part,
lists as repeated ``name[]`` parts; NVIDIA NIM's ASR REST API takes ``file``,
``language``, ``model``, ``response_format`` and ``temperature`` alone):

=========================  ============================================================
field                      here
=========================  ============================================================
``model``                  looked up in :attr:`TranscriptionConfig.models` (public name ->
                           Riva ``RecognitionConfig.model``; ``None``: Riva picks by
                           language); other names are passed to Riva as they are when
                           ``pass_through_models``, else 400. May be left out when
                           ``language`` is given, as NIM allows; neither is 400, as there.
``language``               ISO-639-1 (``en``) or BCP-47 (``en-US``, NIM's ``multi``) ->
                           ``language_code`` (:mod:`.languages`); absent: the config's
                           ``default_language`` (Riva cannot detect the language unless
                           the model is multilingual)
``prompt``                 refused unless empty (400). Riva has no free-text prompt:
                           boosting its words would change what is heard, not the style
                           OpenAI's prompt guides, and no Riva field takes text to
                           condition on (the embedded server's
                           ``condition_on_previous_text`` uses its own finals). Send
                           ``keywords[]`` to favour words.
``keywords[]``             Riva ``speech_contexts`` phrases (word boosting), as
                           ``gpt-transcribe`` uses them to guide recognition
``response_format``        json, text, verbose_json, srt, vtt; ``diarized_json`` and
                           others are 400
``temperature``            0 only (absent is 0). Riva decodes deterministically; any other
                           value would be ignored, so it is refused (400) rather than
                           pretended. NIM documents it as "accepted, no effect": a NIM
                           client sending 0.2 gets a 400 here.
``timestamp_granularities  ``word``, ``segment`` (default ``segment``); only with
[]``                       verbose_json, as OpenAI requires (400 otherwise)
``stream``                 ``false`` only; streaming is the WebSocket route's job
``chunking_strategy``      ``auto`` only: the upload is cut at its quietest points
                           (:mod:`.chunking`); ``server_vad`` settings are 400
``languages[]``            one entry is taken as ``language``; more are 400
``include[]``,             400: Riva returns no token log-probabilities and no speakers
``known_speaker_*[]``
anything else              400, named: a field that would be ignored is refused
=========================  ============================================================
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from asr.options import AudioEncoding, RecognitionOptions

from .errors import InvalidRequestError
from .languages import to_riva_language

__all__ = [
    "ResponseFormat",
    "TimestampGranularity",
    "TranscriptionConfig",
    "TranscriptionRequest",
    "parse_form",
    "recognition_options",
]


class ResponseFormat(StrEnum):
    """The ``response_format`` values served (OpenAI's, less ``diarized_json``)."""

    JSON = "json"
    TEXT = "text"
    VERBOSE_JSON = "verbose_json"
    SRT = "srt"
    VTT = "vtt"


class TimestampGranularity(StrEnum):
    """OpenAI's ``timestamp_granularities[]``."""

    WORD = "word"
    SEGMENT = "segment"


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _default_models() -> dict[str, str | None]:
    return {"whisper-1": None}


class TranscriptionConfig(_Frozen):
    """How the gateway maps the route's fields to Riva.

    Attributes:
        models: Public model name -> Riva model name, ``None`` to let Riva pick one by
            language. Default: ``whisper-1`` (the name OpenAI's clients send) -> Riva's
            choice.
        pass_through_models: Send a model name not in ``models`` to Riva as it is (Riva
            answers NOT_FOUND for one it lacks); ``False`` refuses it with 400.
        default_language: BCP-47 language when the request names none.
        max_keywords: Most ``keywords[]`` entries accepted.
    """

    models: dict[str, str | None] = Field(default_factory=_default_models)
    pass_through_models: bool = True
    default_language: str = "en-US"
    max_keywords: int = Field(default=100, ge=0)


class TranscriptionRequest(_Frozen):
    """A validated request (everything but the file).

    Attributes:
        model: The model name the client sent, if any.
        riva_model: Riva's ``RecognitionConfig.model``; ``None`` lets Riva choose.
        language_code: Riva's BCP-47 ``language_code``.
        response_format: The format to answer in.
        timestamp_granularities: Only with verbose_json: what timestamps to return.
        keywords: Phrases to boost (Riva ``speech_contexts``).
    """

    model: str | None = None
    riva_model: str | None = None
    language_code: str = "en-US"
    response_format: ResponseFormat = ResponseFormat.JSON
    timestamp_granularities: frozenset[TimestampGranularity] = frozenset()
    keywords: tuple[str, ...] = ()

    @property
    def wants_segments(self) -> bool:
        """verbose_json ``segments[]``: asked for, or no granularity asked (OpenAI's default)."""
        return self.response_format is ResponseFormat.VERBOSE_JSON and (
            not self.timestamp_granularities
            or TimestampGranularity.SEGMENT in self.timestamp_granularities
        )

    @property
    def wants_words(self) -> bool:
        """verbose_json ``words[]``."""
        return TimestampGranularity.WORD in self.timestamp_granularities

    @property
    def needs_times(self) -> bool:
        """Whether the response carries times, so Riva must return word time offsets."""
        return self.response_format in (
            ResponseFormat.VERBOSE_JSON,
            ResponseFormat.SRT,
            ResponseFormat.VTT,
        )


_SCALARS = (
    "chunking_strategy",
    "language",
    "model",
    "prompt",
    "response_format",
    "stream",
    "temperature",
)
_LISTS = (
    "include",
    "keywords",
    "known_speaker_names",
    "known_speaker_references",
    "languages",
    "timestamp_granularities",
)


def _collect(items: Iterable[tuple[str, object]]) -> dict[str, list[str]]:
    fields: dict[str, list[str]] = {}
    for key, value in items:
        if key == "file":
            continue
        name = key[:-2] if key.endswith("[]") else key
        if name.startswith("chunking_strategy["):
            # The SDK sends a server_vad object as chunking_strategy[type]=... parts.
            raise InvalidRequestError(
                "chunking_strategy 'server_vad' is not supported: the upload is cut at its "
                "quietest points; send 'auto' or leave it out",
                param="chunking_strategy",
            )
        if name not in _SCALARS and name not in _LISTS:
            raise InvalidRequestError(f"unknown parameter {key!r}", param=key)
        if not isinstance(value, str):
            raise InvalidRequestError(f"{name!r} must be a text field, not a file", param=name)
        fields.setdefault(name, []).append(value)
    for name in _SCALARS:
        if len(fields.get(name, ())) > 1:
            raise InvalidRequestError(f"{name!r} was given more than once", param=name)
    return fields


def _temperature(text: str | None) -> None:
    if text is None or not text.strip():
        return
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if math.isnan(value) or not 0.0 <= value <= 1.0:
        raise InvalidRequestError(
            f"temperature must be a number between 0 and 1, got {text!r}", param="temperature"
        )
    if value != 0.0:
        raise InvalidRequestError(
            f"temperature {text} is not supported: Riva decodes deterministically and has no "
            "sampling temperature; send 0 or leave it out",
            param="temperature",
        )


def _language(fields: Mapping[str, list[str]]) -> str | None:
    languages = [v for v in fields.get("languages", []) if v.strip()]
    if len(languages) > 1:
        raise InvalidRequestError(
            "languages[] takes one language here: Riva recognises one language per "
            "request (or 'multi' with a multilingual model)",
            param="languages",
        )
    given = [v for v in fields.get("language", []) if v.strip()] + languages
    if not given:
        return None
    codes = {to_riva_language(v) for v in given}
    if None in codes:
        raise InvalidRequestError(
            f"language {given[0]!r} is not an ISO-639-1 code ('en') or a BCP-47 tag ('en-US')",
            param="language",
        )
    if len(codes) > 1:
        raise InvalidRequestError("language and languages[] disagree", param="languages")
    return codes.pop()


def _model(name: str | None, config: TranscriptionConfig) -> str | None:
    if name is None:
        return None
    if name in config.models:
        return config.models[name]
    if config.pass_through_models:
        return name
    offered = ", ".join(sorted(config.models)) or "none"
    raise InvalidRequestError(
        f"model {name!r} is not offered here; models: {offered}", param="model"
    )


def _refuse_unsupported(fields: Mapping[str, list[str]]) -> None:
    if any(p.strip() for p in fields.get("prompt", [])):
        raise InvalidRequestError(
            "prompt is not supported: Riva takes no free-text prompt; send keywords[] to "
            "favour words or phrases",
            param="prompt",
        )
    if any(v.strip().lower() not in ("", "false") for v in fields.get("stream", [])):
        raise InvalidRequestError(
            "stream is not supported on this route; stream audio over the WebSocket route "
            "/v1/audio/transcriptions/stream",
            param="stream",
        )
    if any(v.strip() not in ("", "auto") for v in fields.get("chunking_strategy", [])):
        raise InvalidRequestError(
            "chunking_strategy must be 'auto' (the upload is cut at its quietest points)",
            param="chunking_strategy",
        )
    if any(v.strip() for v in fields.get("include", [])):
        raise InvalidRequestError(
            "include[] is not supported: Riva returns no token log-probabilities",
            param="include",
        )
    for name in ("known_speaker_names", "known_speaker_references"):
        if fields.get(name):
            raise InvalidRequestError(
                f"{name}[] is not supported: this route does not diarize", param=name
            )


def parse_form(
    items: Iterable[tuple[str, object]], config: TranscriptionConfig | None = None
) -> TranscriptionRequest:
    """Validate the form's fields (``FormData.multi_items()``; the ``file`` part is skipped).

    Raises:
        InvalidRequestError: A field is unknown, repeated, malformed, or asks for what
            Riva cannot do (see the module's table).
    """
    config = config or TranscriptionConfig()
    fields = _collect(items)
    _refuse_unsupported(fields)
    _temperature(next(iter(fields.get("temperature", [])), None))

    raw_format = next(iter(fields.get("response_format", [])), "").strip() or "json"
    try:
        response_format = ResponseFormat(raw_format)
    except ValueError:
        accepted = ", ".join(f.value for f in ResponseFormat)
        raise InvalidRequestError(
            f"response_format {raw_format!r} is not supported; use one of {accepted}",
            param="response_format",
        ) from None

    granularities: set[TimestampGranularity] = set()
    for value in fields.get("timestamp_granularities", []):
        try:
            granularities.add(TimestampGranularity(value.strip()))
        except ValueError:
            raise InvalidRequestError(
                f"timestamp_granularities[] takes 'word' or 'segment', got {value!r}",
                param="timestamp_granularities",
            ) from None
    if granularities and response_format is not ResponseFormat.VERBOSE_JSON:
        raise InvalidRequestError(
            "timestamp_granularities[] needs response_format 'verbose_json'",
            param="timestamp_granularities",
        )

    keywords = tuple(k.strip() for k in fields.get("keywords", []) if k.strip())
    if len(keywords) > config.max_keywords:
        raise InvalidRequestError(
            f"at most {config.max_keywords} keywords[] are accepted, got {len(keywords)}",
            param="keywords",
        )

    model = next(iter(fields.get("model", [])), "").strip() or None
    language = _language(fields)
    if model is None and language is None:
        raise InvalidRequestError("model or language is required", param="model")
    return TranscriptionRequest(
        model=model,
        riva_model=_model(model, config),
        language_code=language or config.default_language,
        response_format=response_format,
        timestamp_granularities=frozenset(granularities),
        keywords=keywords,
    )


def recognition_options(
    request: TranscriptionRequest, *, sample_rate_hz: int = 16_000
) -> RecognitionOptions:
    """The Riva ``Recognize`` options for ``request``'s audio, sent as the PCM16 mono
    chunks :func:`~.chunking.pcm_chunks` yields.

    Punctuation is on (OpenAI's text is punctuated); word time offsets are asked when the
    response carries times (verbose_json, srt, vtt).
    """
    return RecognitionOptions(
        language_code=request.language_code,
        model=request.riva_model,
        encoding=AudioEncoding.LINEAR_PCM,
        sample_rate_hz=sample_rate_hz,
        channels=1,
        automatic_punctuation=True,
        word_time_offsets=True if request.needs_times else None,
        boosted_words=request.keywords,
        interim_results=False,
    )
