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
serve: 404.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Literal

import soundfile as sf
from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel
from starlette.responses import Response

from asr.events import Final

from .credentials import ErrorBody, check_credentials, refusal_response
from .recordings import InvalidCursor, JobRecord, JobState, Recordings, SessionRecord
from .recordings import SessionState as RecordedState
from .state import Gateway, GatewayDep, owner_of
from .transcriptions.formats import srt_body, text_body, vtt_body

__all__ = [
    "AudioInfo",
    "FinalBody",
    "JOB_PATH",
    "JobBody",
    "SESSIONS_PATH",
    "SessionBody",
    "SessionList",
    "SessionSummary",
    "WordBody",
    "router",
]

SESSIONS_PATH = "/v1/sessions"
JOB_PATH = "/v1/audio/transcriptions/{job_id}"
"""An enhancement job (beside ``POST /v1/audio/transcriptions``, the upload route; the
WebSocket's ``/v1/audio/transcriptions/stream`` is mounted first and keeps its path)."""

router = APIRouter(tags=["recordings"])

_MEDIA_TYPES = {
    "text": "text/plain; charset=utf-8",
    "srt": "application/x-subrip; charset=utf-8",
    "vtt": "text/vtt; charset=utf-8",
}


# --- bodies --------------------------------------------------------------------------


class WordBody(BaseModel):
    """A word with its time in seconds from the session's start."""

    word: str
    start: float
    end: float
    confidence: float | None


class FinalBody(BaseModel):
    """One final (an utterance), times in seconds from the session's start.

    Without word times, an utterance starts where the previous one ended and ends where
    Riva had processed the audio when it settled it.
    """

    text: str
    start: float
    end: float
    confidence: float | None
    words: list[WordBody]


class AudioInfo(BaseModel):
    """The session's recording."""

    recording_id: str
    url: str
    """``GET`` it for the WAV (``?format=flac`` for FLAC)."""
    format: str
    """``wav/pcm_s16le``: mono PCM16 in a RIFF WAV."""
    sample_rate: int
    duration_seconds: float


class SessionSummary(BaseModel):
    """A recorded session as listed."""

    id: str
    state: Literal["recording", "completed", "interrupted"]
    """``interrupted``: the gateway stopped mid-session; the audio up to then is kept."""
    interface: str
    created_at: datetime
    ended_at: datetime | None
    audio: AudioInfo
    enhancement_job_id: str | None
    enhancement_url: str | None


class SessionBody(SessionSummary):
    """A recorded session with its real-time finals."""

    finals: list[FinalBody]


class SessionList(BaseModel):
    """A page of the caller's sessions, newest first."""

    sessions: list[SessionSummary]
    next_cursor: str | None
    """Pass as ``cursor`` for the next page; ``null`` on the last page."""


class JobBody(BaseModel):
    """An enhancement job and, once completed, its transcript."""

    id: str
    object: Literal["transcription.job"] = "transcription.job"
    status: Literal["queued", "running", "completed", "failed"]
    session_id: str
    created_at: datetime
    updated_at: datetime
    attempts: int
    error: str | None
    text: str | None
    """The transcript, once completed."""
    duration_seconds: float | None
    finals: list[FinalBody] | None
    """The utterances with their times, once completed."""


# --- conversions ---------------------------------------------------------------------


def _finals(finals: Sequence[Final]) -> list[FinalBody]:
    bodies: list[FinalBody] = []
    previous_end = 0.0
    for final in finals:
        if not final.text.strip():
            continue
        if final.words:
            start, end = final.words[0].start_ms / 1000, final.words[-1].end_ms / 1000
        else:
            start, end = previous_end, max(previous_end, round(final.audio_processed, 3))
        words = [
            WordBody(
                word=w.word, start=w.start_ms / 1000, end=w.end_ms / 1000, confidence=w.confidence
            )
            for w in final.words
        ]
        bodies.append(
            FinalBody(
                text=final.text, start=start, end=end, confidence=final.confidence, words=words
            )
        )
        previous_end = end
    return bodies


def _summary(record: SessionRecord) -> dict[str, object]:
    job = record.enhancement_job_id
    return {
        "id": record.id,
        "state": record.state.value,
        "interface": record.interface,
        "created_at": record.created_at,
        "ended_at": record.ended_at,
        "audio": AudioInfo(
            recording_id=record.recording_id,
            url=f"{SESSIONS_PATH}/{record.id}/audio",
            format=record.audio_format,
            sample_rate=record.sample_rate,
            duration_seconds=round(record.duration_seconds, 3),
        ),
        "enhancement_job_id": job,
        "enhancement_url": JOB_PATH.format(job_id=job) if job is not None else None,
    }


def _job(job: JobRecord) -> JobBody:
    done = job.state is JobState.COMPLETED and job.result is not None
    duration = job.result.get("duration_seconds") if done and job.result else None
    return JobBody(
        id=job.id,
        status=job.state.value,
        session_id=job.session_id,
        created_at=job.created_at,
        updated_at=job.updated_at,
        attempts=job.attempts,
        error=job.error,
        text=" ".join(f.text.strip() for f in job.finals if f.text.strip()) if done else None,
        duration_seconds=float(duration) if duration is not None else None,
        finals=_finals(job.finals) if done else None,
    )


# --- authentication ------------------------------------------------------------------


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
        sessions=[SessionSummary.model_validate(_summary(s)) for s in page.sessions],
        next_cursor=page.next_cursor,
    )
    return JSONResponse(body.model_dump(mode="json"))


@router.get(f"{SESSIONS_PATH}/{{session_id}}", response_model=SessionBody, responses=_REFUSALS)
async def get_session(session_id: str, request: Request, gw: GatewayDep) -> Response:
    """One of the caller's sessions with its real-time finals."""
    caller = _caller(request, gw)
    if isinstance(caller, Response):
        return caller
    owner, recordings = caller
    record = await recordings.get_session(owner, session_id)
    if record is None:
        return _error(404, _NOT_FOUND)
    body = SessionBody.model_validate(_summary(record) | {"finals": _finals(record.finals)})
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
    caller = _caller(request, gw)
    if isinstance(caller, Response):
        return caller
    owner, recordings = caller
    record = await recordings.get_session(owner, session_id)
    if record is None:
        return _error(404, _NOT_FOUND)
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
    body = _job(job)
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
