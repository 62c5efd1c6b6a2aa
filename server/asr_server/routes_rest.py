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
against ``max_sessions`` and a shutdown lets it finish within the drain timeout. With the
admission queue on, a request past the limits waits for a slot (silently: the response is
the answer) up to ``queue_timeout_seconds``, then 429 as when it is off.
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
from python_multipart.multipart import parse_options_header
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

from .auth import refusal_status
from .credentials import check_credentials
from .protocol import GOING_AWAY, error_code_for
from .state import Gateway, GatewayDep
from .transcriptions import (
    AudioTooLongError,
    InvalidRequestError,
    NotAudioError,
    PcmChunk,
    TranscriptionError,
    UnsupportedMediaTypeError,
    UploadTooLargeError,
    parse_form,
    pcm_chunks,
    recognition_options,
    render,
    transcribe_chunks,
)
from .transcriptions.multipart import FORM_BYTES, StreamingForm
from .transcriptions.openapi import REQUEST_BODY, RESPONSES

__all__ = [
    "INTERFACE",
    "RestRequest",
    "TRANSCRIPTIONS_PATH",
    "create_transcription",
    "router",
]

TRANSCRIPTIONS_PATH = "/v1/audio/transcriptions"
INTERFACE = "rest"
"""This route's ``interface`` label in the gateway's metrics."""

logger = logging.getLogger("asr.server")
router = APIRouter()


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


async def _spool(form: StreamingForm, spool: Any) -> AsyncIterator[bytes]:
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
    form = StreamingForm(request.stream(), options[b"boundary"], limits.max_bytes)
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
    responses=RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"multipart/form-data": {"schema": REQUEST_BODY}},
        }
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
    # OpenAI's SDK sends its api_key, a key or a browser token, as the Bearer header.
    decision = check_credentials(request, gw, log, query_keys=False, bearer_tokens=True)
    # With the admission queue on, the request waits for a place silently (issue 12).
    refusal = await gw.admission.wait_for_slot(INTERFACE) if decision.allowed else None
    if not decision.allowed:
        status, headers = refusal_status(decision)
        code = "too_many_attempts" if status == 429 else "invalid_api_key"
        response = _error(status, decision.refusal or "", code, **headers)
        close: int = CloseCode.UNAUTHORIZED
    elif refusal is not None and refusal.shutting_down:
        log.warning("refused: %s", refusal.log)
        response = _error(503, refusal.message, "shutting_down", **{"Retry-After": "1"})
        close = GOING_AWAY
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
