"""``POST /v1/audio/transcriptions``: OpenAI's (and NVIDIA NIM's) file transcription,
relayed to Riva's offline ``Recognize`` in pieces (:mod:`asr_server.transcriptions`).

The multipart body is parsed as it arrives (python-multipart's streaming parser, not
Starlette's ``request.form()``, which spools the whole file first): the file part's bytes
go to the decoder and each piece to Riva while the rest is still uploading. The fields
must be known before the first ``Recognize``, so they are taken from the parts before
the file (every OpenAI SDK, httpx, requests and ``curl -F`` with the file last). When
those do not make a request (``model`` after the file), the file is spooled (memory,
then disk) until the fields are in. Fields after the file are validated too; one that
would change what Riva is asked (``language``) is refused, as its audio was sent.

Each request holds an admission slot (interface ``rest``) while it runs, so it counts
against ``max_sessions`` and a shutdown lets it finish within the drain timeout.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import tempfile
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from asr.contract import ERRORS, CloseCode, ErrorCode
from asr.errors import (
    ASRError,
    CircuitOpenError,
    DeadlineExceededError,
    InvalidArgumentError,
    NotFoundError,
    ResourceExhaustedError,
    TransientError,
)
from asr.events import Final
from asr.logs import ContextAdapter
from asr.options import RecognitionOptions

from .auth import Decision, bearer, matching_key
from .protocol import GOING_AWAY, error_code_for
from .state import Gateway, GatewayDep, client_address
from .transcriptions import (
    MEDIA_TYPES,
    AudioTooLongError,
    InvalidRequestError,
    NotAudioError,
    PcmChunk,
    ResponseFormat,
    TranscriptionError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
    parse_form,
    pcm_chunks,
    recognition_options,
    render,
    transcribe_chunks,
)

__all__ = [
    "FORM_BYTES",
    "INTERFACE",
    "OpenAIError",
    "OpenAIErrorBody",
    "RestRequest",
    "TRANSCRIPTIONS_PATH",
    "TranscriptionBody",
    "TranscriptionSegment",
    "TranscriptionUsage",
    "TranscriptionWord",
    "VerboseTranscriptionBody",
    "create_transcription",
    "router",
]

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
INTERFACE = "rest"
"""This route's ``interface`` label in the gateway's metrics."""

FORM_BYTES = 64 * 1024
"""What the fields and part headers together may add to the file's ``max_bytes``."""

logger = logging.getLogger("asr.server")
router = APIRouter()


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


_FORM = {
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
_RESPONSES: dict[int | str, dict[str, Any]] = {
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


def _error(status: int, message: str, code: str, **headers: str) -> JSONResponse:
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


_CLOSE_CODES: dict[type[TranscriptionError], ErrorCode] = {
    UploadTooLargeError: ErrorCode.FRAME_TOO_LARGE,
    AudioTooLongError: ErrorCode.SESSION_TOO_LONG,
    NotAudioError: ErrorCode.INVALID_AUDIO,
    UnsupportedMediaTypeError: ErrorCode.INVALID_AUDIO,
}


def _riva_error(exc: ASRError) -> tuple[int, str]:
    if isinstance(exc, InvalidArgumentError | NotFoundError):
        return 400, "the speech backend did not accept the language, model or keywords"
    if isinstance(exc, ResourceExhaustedError):
        return 429, "the speech backend is at capacity; try again later"
    if isinstance(exc, DeadlineExceededError):
        return 504, "the speech backend did not answer in time"
    if isinstance(exc, TransientError | CircuitOpenError):
        return 503, "the speech backend is unavailable; try again"
    return 500, "the speech backend failed"


class RestRequest:
    """One transcription request as the admission and the shutdown see it."""

    def __init__(self) -> None:
        self.riva_streams = 0  # a Recognize call in flight holds one of Riva's slots
        self.audio_seconds = 0.0
        self.deadline = asyncio.timeout(None)

    def shutdown(self, timeout: float) -> None:
        """Let the request finish within ``timeout`` s, else answer 503."""
        if self.deadline.when() is None:
            self.deadline.reschedule(asyncio.get_running_loop().time() + timeout)


class _Form:
    """The multipart body as it arrives: text fields collected, the file's bytes yielded."""

    def __init__(self, request: Request, boundary: bytes, max_bytes: int) -> None:
        self.fields: list[tuple[str, str]] = []
        self._body = request.stream()
        self._bound, self._received, self._field_bytes = max_bytes + FORM_BYTES, 0, 0
        self._events: list[tuple[str, bytes]] = []
        self._header = [bytearray(), bytearray()]
        self._disposition = b""
        self._part: tuple[str, bool] | None = None  # (name, is a file) of the current part
        self._files, self._value = 0, bytearray()

        def add(kind: str) -> Any:
            return lambda data, start, end: self._events.append((kind, data[start:end]))

        self._parser = MultipartParser(
            boundary,
            {
                "on_header_field": lambda d, s, e: self._header[0].extend(d[s:e]),
                "on_header_value": lambda d, s, e: self._header[1].extend(d[s:e]),
                "on_header_end": self._header_end,
                "on_headers_finished": lambda: self._events.append(("part", self._disposition)),
                "on_part_data": add("data"),
                "on_part_end": lambda: self._events.append(("end", b"")),
            },
        )

    def _header_end(self) -> None:
        if bytes(self._header[0]).lower() == b"content-disposition":
            self._disposition = bytes(self._header[1])
        self._header = [bytearray(), bytearray()]

    async def _next(self) -> tuple[str, bytes] | None:
        while not self._events:
            chunk = await anext(self._body, None)
            if chunk is None:
                if self._parser.state != MultipartState.END:
                    raise InvalidRequestError("the multipart body ends before its last part")
                return None
            self._received += len(chunk)
            if self._received > self._bound:
                raise UploadTooLargeError(f"the request is larger than {self._bound} bytes")
            try:
                self._parser.write(chunk)
            except MultipartParseError as exc:
                raise InvalidRequestError(f"the body is not multipart/form-data: {exc}") from exc
        return self._events.pop(0)

    async def until_file(self) -> bool:
        """Collect fields up to the file part's start; whether there is one."""
        while (event := await self._next()) is not None:
            kind, data = event
            if kind == "part":
                _, options = parse_options_header(data)
                name = options.get(b"name", b"").decode(errors="replace")
                self._part = (name, b"filename" in options or name == "file")
                if self._part[1]:
                    self._files += 1
                    if name != "file" or self._files > 1:
                        raise InvalidRequestError("send one file, as the 'file' field")
                    return True
            elif kind == "data" and self._part and not self._part[1]:
                self._field_bytes += len(data)
                if self._field_bytes > FORM_BYTES:
                    raise InvalidRequestError(f"the fields hold more than {FORM_BYTES} bytes")
                self._value += data
            elif kind == "end" and self._part and not self._part[1]:
                self.fields.append((self._part[0], self._value.decode(errors="replace")))
                self._value = bytearray()
        return False

    async def file(self) -> AsyncIterator[bytes]:
        """The file part's bytes (after :meth:`until_file`)."""
        while (event := await self._next()) is not None and event[0] == "data":
            yield event[1]

    async def rest(self) -> None:
        """Read the body to its end: the fields after the file (the file's tail skipped)."""
        if await self.until_file():
            raise InvalidRequestError("send one file, as the 'file' field")


def _authorize(request: Request, gw: Gateway) -> Decision:
    header, tokens = request.headers.get("authorization"), request.query_params.getlist("token")
    offered = bearer(header)
    if offered and offered.startswith("v1.") and not matching_key(offered, gw.auth.api_keys):
        tokens, header = [*tokens, offered], None  # a browser token sent as Bearer
    now, wall = time.monotonic(), time.time()
    return gw.auth.check(
        client_address(request), query_tokens=tokens, authorization=header, now=now, wall=wall
    )


async def _spool(form: _Form, spool: Any) -> AsyncIterator[bytes]:
    """Read the file into ``spool`` and the fields after it; then replay the file."""
    async for data in form.file():  # bounded by the body's limit
        spool.write(data)
    await form.rest()
    spool.seek(0)
    yield b""
    while data := await asyncio.to_thread(spool.read, 1 << 16):
        yield data


async def _transcribe(request: Request, gw: Gateway, slot: RestRequest) -> Response:
    """Read, decode and recognise the upload (TranscriptionError, ASRError and
    ClientDisconnect propagate)."""
    settings = gw.settings.transcriptions
    limits, config = settings.limits, settings.config
    kind, options = parse_options_header(request.headers.get("content-type"))
    if kind != b"multipart/form-data" or b"boundary" not in options:
        raise UnsupportedMediaTypeError("send the request as multipart/form-data")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limits.max_bytes + FORM_BYTES:
        raise UploadTooLargeError(f"the file is larger than the {limits.max_bytes} bytes accepted")
    form = _Form(request, options[b"boundary"], limits.max_bytes)
    if not await form.until_file():
        raise InvalidRequestError("the 'file' field is required", param="file")
    interface = gw.metrics.interface(INTERFACE)

    async def counted(source: AsyncIterator[bytes]) -> AsyncIterator[PcmChunk]:
        async for chunk in pcm_chunks(source, limits):
            interface.audio_seconds.inc(chunk.duration)
            slot.audio_seconds += chunk.duration
            yield chunk

    async def recognize(pcm: bytes, riva: RecognitionOptions) -> list[Final]:
        slot.riva_streams += 1
        try:
            return await gw.client.recognize(pcm, riva, timeout=settings.recognize_timeout)
        finally:
            slot.riva_streams -= 1

    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        try:
            asked, source = parse_form(form.fields, config), form.file()
        except TranscriptionError:  # fields after the file may complete the request
            source = _spool(form, spool)
            await anext(source)  # the file and the rest of the body are in
            asked = parse_form(form.fields, config)
        transcript = await transcribe_chunks(counted(source), recognize, recognition_options(asked))
    await form.rest()
    final = parse_form(form.fields, config)
    if recognition_options(final) != recognition_options(asked):
        raise InvalidRequestError("send the fields before the file: its audio was recognised")
    rendered = render(transcript.finals, transcript.duration, final)
    return Response(rendered.body, media_type=rendered.media_type)


async def _run(request: Request, gw: Gateway, slot: RestRequest, log: Any) -> tuple[Response, int]:
    """The response and the close code the WebSocket contract gives the same outcome."""
    try:
        async with slot.deadline:
            return await _transcribe(request, gw, slot), CloseCode.NORMAL
    except TranscriptionError as exc:
        log.info("refused (%d %s): %s", exc.status, exc.code, exc.message)
        code = _CLOSE_CODES.get(type(exc), ErrorCode.INVALID_CONFIG)
        return JSONResponse(exc.body(), status_code=exc.status), ERRORS[code].close_code
    except ASRError as exc:
        log.warning("Riva failed: %r", exc)  # the details name internal addresses: log only
        if isinstance(exc, ResourceExhaustedError):
            gw.admission.backend_exhausted(asyncio.get_running_loop().time())
        status, message = _riva_error(exc)
        code = error_code_for(exc)
        return _error(status, message, code.value), ERRORS[code].close_code
    except TimeoutError:  # the shutdown's drain deadline (RestRequest.shutdown)
        return _error(503, "the server is shutting down; try again", "shutting_down"), GOING_AWAY
    except ClientDisconnect:
        raise
    except Exception:
        log.exception("internal error")
        return _error(500, "internal server error", "internal_error"), CloseCode.INTERNAL_ERROR


@router.post(
    TRANSCRIPTIONS_PATH,
    response_class=Response,
    responses=_RESPONSES,
    openapi_extra={
        "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": _FORM}}}
    },
    summary="Transcribe an audio file (OpenAI's and NIM's REST API)",
    tags=["transcription"],
)
async def create_transcription(request: Request, gw: GatewayDep) -> Response:
    """The upload's transcript: fields as OpenAI's ``audio.transcriptions.create`` sends
    them (see ``asr_server.transcriptions.request`` for what each becomes)."""
    log = ContextAdapter(logger, {"session_id": secrets.token_hex(8)})
    interface, started = gw.metrics.interface(INTERFACE), time.monotonic()
    slot, by, response = RestRequest(), "server", Response()
    decision = _authorize(request, gw)
    now = asyncio.get_running_loop().time()
    refusal = gw.admission.refusal(now) if decision.allowed else None
    if decision.retry_after is not None:
        retry = str(max(1, round(decision.retry_after)))
        response = _error(
            429, decision.refusal or "", "too_many_attempts", **{"Retry-After": retry}
        )
        close: int = CloseCode.UNAUTHORIZED
    elif not decision.allowed:
        headers = {"WWW-Authenticate": 'Bearer realm="asr"'}
        response = _error(401, decision.refusal or "", "invalid_api_key", **headers)
        close = CloseCode.UNAUTHORIZED
    elif refusal is not None:
        status = 429 if gw.admission.active >= gw.admission.limits.max_sessions else 503
        log.warning("refused: %s", refusal.log)
        response = _error(status, refusal.message, refusal.code.value, **{"Retry-After": "1"})
        close = CloseCode.TOO_MANY_SESSIONS
    else:
        with gw.admission.hold(slot, INTERFACE):
            interface.sessions_started.inc()
            try:
                response, close = await _run(request, gw, slot, log)
            except ClientDisconnect:
                response, close, by = Response(status_code=400), 1006, "client"
    interface.session_ended(int(close), by)
    log.info(
        "POST %s: %d, %.1f s of audio in %.2f s%s",
        TRANSCRIPTIONS_PATH,
        response.status_code,
        slot.audio_seconds,
        time.monotonic() - started,
        "" if by == "server" else " (the client went away)",
        extra={"status": response.status_code, "close_code": int(close), "key_id": decision.key_id},
    )
    return response
