"""The pure parts of ``POST /v1/audio/transcriptions``: OpenAI's (and NVIDIA NIM's)
REST transcription of a file, relayed to Riva's offline ``Recognize``.

::

    request = parse_form(form.multi_items(), config)          # 400 on a bad field
    chunks = pcm_chunks(iter_upload(upload.read), limits)     # 400/413/415 on a bad file
    transcript = await transcribe_chunks(chunks, client.recognize, recognition_options(request))
    rendered = render(transcript.finals, transcript.duration, request)

Every refusal is a :class:`TranscriptionError` carrying its HTTP ``status`` and OpenAI's
error ``body()``. Nothing here opens a socket; the route on the ASGI app does.
"""

from __future__ import annotations

from .chunking import (
    PcmChunk,
    PcmChunker,
    Recognize,
    Transcript,
    pcm_chunks,
    stitch,
    transcribe_chunks,
)
from .decode import decode_pcm16, iter_upload
from .errors import (
    AudioTooLongError,
    InvalidRequestError,
    NotAudioError,
    TranscriptionError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
)
from .formats import MEDIA_TYPES, Cue, RenderedResponse, cues, render
from .request import (
    ResponseFormat,
    TimestampGranularity,
    TranscriptionConfig,
    TranscriptionRequest,
    parse_form,
    recognition_options,
)
from .upload import ACCEPTED_FORMATS, AudioInfo, Container, UploadLimits, probe, sniff

__all__ = [
    "ACCEPTED_FORMATS",
    "AudioInfo",
    "AudioTooLongError",
    "Container",
    "Cue",
    "InvalidRequestError",
    "MEDIA_TYPES",
    "NotAudioError",
    "PcmChunk",
    "PcmChunker",
    "Recognize",
    "RenderedResponse",
    "ResponseFormat",
    "TimestampGranularity",
    "Transcript",
    "TranscriptionConfig",
    "TranscriptionError",
    "TranscriptionRequest",
    "UnsupportedMediaTypeError",
    "UploadLimits",
    "UploadTooLargeError",
    "cues",
    "decode_pcm16",
    "iter_upload",
    "parse_form",
    "pcm_chunks",
    "probe",
    "recognition_options",
    "render",
    "sniff",
    "stitch",
    "transcribe_chunks",
]
