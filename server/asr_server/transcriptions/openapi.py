"""The OpenAPI description of ``POST /v1/audio/transcriptions``: response models and the
multipart request body, as OpenAI documents them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .formats import MEDIA_TYPES
from .request import ResponseFormat

__all__ = [
    "OpenAIError",
    "OpenAIErrorBody",
    "REQUEST_BODY",
    "RESPONSES",
    "TranscriptionBody",
    "TranscriptionSegment",
    "TranscriptionUsage",
    "TranscriptionWord",
    "VerboseTranscriptionBody",
]


class TranscriptionUsage(BaseModel):
    type: str = "duration"
    seconds: int


class TranscriptionBody(BaseModel):
    """``response_format=json``."""

    text: str
    usage: TranscriptionUsage


class TranscriptionSegment(BaseModel):
    id: int
    seek: int
    start: float
    end: float
    text: str
    tokens: list[int]
    temperature: float
    avg_logprob: float
    compression_ratio: float
    no_speech_prob: float


class TranscriptionWord(BaseModel):
    word: str
    start: float
    end: float


class VerboseTranscriptionBody(BaseModel):
    """``response_format=verbose_json``; ``segments``/``words`` as the granularities ask."""

    task: str
    language: str
    duration: float
    text: str
    segments: list[TranscriptionSegment] | None = None
    words: list[TranscriptionWord] | None = None
    usage: TranscriptionUsage


class OpenAIError(BaseModel):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIErrorBody(BaseModel):
    error: OpenAIError


def _array(*values: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string", **({"enum": values} if values else {})}}


REQUEST_BODY = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary", "description": "WAV, FLAC, Ogg, MP3"},
        "model": {"type": "string", "description": "whisper-1 or a Riva model; or language"},
        "language": {"type": "string", "description": "ISO-639-1 (en) or BCP-47 (en-US)"},
        "response_format": {"type": "string", "enum": [f.value for f in ResponseFormat]},
        "temperature": {"type": "number", "enum": [0]},
        "timestamp_granularities[]": _array("word", "segment"),
        "keywords[]": _array(),
        "prompt": {"type": "string", "description": "must be empty"},
        "stream": {"type": "boolean", "enum": [False]},
        "chunking_strategy": {"type": "string", "enum": ["auto"]},
    },
}
_ERROR = {"model": OpenAIErrorBody}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "model": TranscriptionBody | VerboseTranscriptionBody,
        "content": {t.split(";")[0]: {"schema": {"type": "string"}} for t in MEDIA_TYPES.values()}
        | {"application/json": {}},
        "description": "json, verbose_json, or text/srt/vtt as their media types",
    },
    400: _ERROR | {"description": "A bad field, not audio, or too long a recording"},
    401: _ERROR | {"description": "No API key or token, or a wrong one"},
    413: _ERROR | {"description": "A file larger than the configured limit"},
    415: _ERROR | {"description": "Audio in a container not decoded here (MP4, WebM)"},
    429: _ERROR | {"description": "At the session limit, or too many failed credentials"},
    503: _ERROR | {"description": "Riva unavailable, or its capacity reached"},
}
