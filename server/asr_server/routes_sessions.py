"""Recorded sessions and their enhancement jobs over HTTP (issue 15).

=========================================  ==============================================
route                                      answer
=========================================  ==============================================
``GET /v1/sessions``                       the caller's sessions, newest first, paged
                                           (``limit``, ``cursor`` from ``next_cursor``)
``GET /v1/sessions/{id}``                  one session: state, times, audio length and
                                           link, the real-time finals with their times
``GET /v1/sessions/{id}/audio``            the audio as sent to Riva: 16 kHz PCM16 WAV, or
                                           FLAC (``?format=flac``, ``Accept: audio/flac``)
``DELETE /v1/sessions/{id}``               audio, finals and jobs removed; 204
``GET /v1/audio/transcriptions/{job_id}``  the enhancement job: ``status`` and, once
                                           completed, its transcript; ``response_format``
                                           ``json`` (default), ``text``, ``srt``, ``vtt``
=========================================  ==============================================

Authentication is the WebSocket's (an API key as ``Authorization: Bearer`` or
``?api_key=``, or a browser ``?token=``), with the same back-off. Everything belongs to the
key that created it (:func:`~asr_server.state.owner_of`): another key's session or job is
answered 404, as one that does not exist. With the recording policy off there is nothing to
serve: 404. The bodies and how records become them are
:mod:`asr_server.session_bodies`.
"""

from __future__ import annotations

import asyncio
import io
from typing import Annotated, Literal

import soundfile as sf
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from starlette.responses import Response

from .credentials import ErrorBody, check_credentials, refusal_response
from .recordings import InvalidCursor, JobState, Recordings, SessionRecord
from .recordings import SessionState as RecordedState
from .session_bodies import (
    JOB_PATH,
    SESSIONS_PATH,
    JobBody,
    SessionBody,
    SessionList,
    SessionSummary,
    finals_body,
    job_body,
    summary,
)
from .state import Gateway, GatewayDep, owner_of
from .transcriptions.formats import srt_body, text_body, vtt_body

__all__ = ["router"]

router = APIRouter(tags=["recordings"])

_MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


# --- the caller and what it owns ----------------------------------------------------


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(ErrorBody(error=message).model_dump(), status_code=status, headers=headers)


def _caller(request: Request, gw: Gateway) -> tuple[str, Recordings] | JSONResponse:
    """The caller's owner id and the recordings, or the refusal to send."""
    decision = check_credentials(request, gw)
    if not decision.allowed:
        return refusal_response(decision)
    if gw.recordings is None:
        return _error(404, "recording is off on this server (ASR_SERVER_RECORDING=off)")
    return owner_of(decision.key_id), gw.recordings


_NOT_FOUND = "no such session"


async def _owned_session(
    request: Request, gw: Gateway, session_id: str
) -> SessionRecord | JSONResponse:
    """The caller's session ``session_id``, or the refusal or 404 to send."""
    caller = _caller(request, gw)
    if isinstance(caller, JSONResponse):
        return caller
    owner, recordings = caller
    record = await recordings.get_session(owner, session_id)
    return record if record is not None else _error(404, _NOT_FOUND)


_REFUSALS: dict[int | str, dict[str, object]] = {
    401: {"model": ErrorBody, "description": "No credential, or a wrong one"},
    404: {"model": ErrorBody, "description": "None of the caller's, or recording is off"},
    429: {"model": ErrorBody, "description": "Too many failed attempts from this address"},
}


# --- routes --------------------------------------------------------------------------


@router.get(
    SESSIONS_PATH,
    response_model=SessionList,
    responses=_REFUSALS | {400: {"model": ErrorBody, "description": "A cursor not handed out"}},
)
async def list_sessions(
    request: Request,
    gw: GatewayDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """The caller's recorded sessions, newest first."""
    caller = _caller(request, gw)
    if isinstance(caller, Response):
        return caller
    owner, recordings = caller
    try:
        page = await recordings.list_sessions(owner, limit=limit, cursor=cursor)
    except InvalidCursor as exc:
        return _error(400, str(exc))
    body = SessionList(
        sessions=[SessionSummary.model_validate(summary(s)) for s in page.sessions],
        next_cursor=page.next_cursor,
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get(f"{SESSIONS_PATH}/{{session_id}}", response_model=SessionBody, responses=_REFUSALS)
async def get_session(session_id: str, request: Request, gw: GatewayDep) -> Response:
    """One of the caller's sessions with its real-time finals."""
    record = await _owned_session(request, gw, session_id)
    if isinstance(record, Response):
        return record
    body = SessionBody.model_validate(summary(record) | {"finals": finals_body(record.finals)})
    return JSONResponse(body.model_dump(mode="json"))


def _flac(path: str) -> bytes:
    samples, rate = sf.read(path, dtype="int16")
    out = io.BytesIO()
    sf.write(out, samples, rate, format="FLAC", subtype="PCM_16")
    return out.getvalue()


def _wants_flac(format: str | None, accept: str) -> bool:
    if format is not None:
        return format == "flac"
    accept = accept.lower()
    return ("audio/flac" in accept or "audio/x-flac" in accept) and "audio/wav" not in accept


@router.get(
    f"{SESSIONS_PATH}/{{session_id}}/audio",
    response_class=Response,
    responses=_REFUSALS
    | {
        200: {"content": {"audio/wav": {}, "audio/flac": {}}, "description": "The audio"},
        409: {"model": ErrorBody, "description": "Still recording"},
    },
)
async def get_audio(
    session_id: str,
    request: Request,
    gw: GatewayDep,
    format: Annotated[Literal["wav", "flac"] | None, Query()] = None,
) -> Response:
    """The session's audio as sent to Riva (16 kHz mono PCM16)."""
    record = await _owned_session(request, gw, session_id)
    if isinstance(record, Response):
        return record
    if record.state is RecordedState.RECORDING:
        return _error(409, "the session is still being recorded")
    if _wants_flac(format, request.headers.get("accept", "")):
        try:
            data = await asyncio.to_thread(_flac, record.audio_path)
        except FileNotFoundError:
            return _error(404, "the session's audio is gone")
        disposition = f'attachment; filename="{record.id}.flac"'
        return Response(data, media_type="audio/flac", headers={"Content-Disposition": disposition})
    return FileResponse(record.audio_path, media_type="audio/wav", filename=f"{record.id}.wav")


@router.delete(
    f"{SESSIONS_PATH}/{{session_id}}",
    status_code=204,
    response_class=Response,
    responses=_REFUSALS,
)
async def delete_session(session_id: str, request: Request, gw: GatewayDep) -> Response:
    """Delete one of the caller's sessions: its audio, finals and jobs."""
    caller = _caller(request, gw)
    if isinstance(caller, Response):
        return caller
    owner, recordings = caller
    if not await recordings.delete_session(owner, session_id):
        return _error(404, _NOT_FOUND)
    return Response(status_code=204)


@router.get(
    JOB_PATH,
    response_model=JobBody,
    responses=_REFUSALS
    | {
        200: {
            "content": {"text/plain": {}, "application/x-subrip": {}, "text/vtt": {}},
            "description": "The job (json), or its transcript as text, SubRip or WebVTT",
        },
        409: {"model": JobBody, "description": "text/srt/vtt of a job not completed"},
    },
)
async def get_job(
    job_id: str,
    request: Request,
    gw: GatewayDep,
    response_format: Annotated[Literal["json", "text", "srt", "vtt"], Query()] = "json",
) -> Response:
    """An enhancement job: its status, and its transcript once completed.

    ``response_format=json`` always answers 200 with the job (``text`` and ``finals``
    once completed). ``text``, ``srt`` and ``vtt``
    answer the transcript once completed, else 409 with the job (``Retry-After`` while
    it is queued or running).
    """
    caller = _caller(request, gw)
    if isinstance(caller, Response):
        return caller
    owner, recordings = caller
    job = await recordings.get_job(owner, job_id)
    if job is None:
        return _error(404, "no such job")
    body = job_body(job)
    if response_format == "json":
        return JSONResponse(body.model_dump(mode="json"))
    if job.state is not JobState.COMPLETED or job.result is None:
        busy = job.state in (JobState.QUEUED, JobState.RUNNING)
        headers = {"Retry-After": "1"} if busy else None
        return JSONResponse(body.model_dump(mode="json"), status_code=409, headers=headers)
    duration = float(job.result.get("duration_seconds", 0.0))
    if response_format == "text":
        text = text_body(job.finals)
    elif response_format == "srt":
        text = srt_body(job.finals, duration)
    else:
        text = vtt_body(job.finals, duration)
    return Response(text, media_type=_MEDIA_TYPES[response_format])
