"""The sessions API on the embedded Riva server: recorded WebSocket sessions, their audio,
finals and enhancement jobs over HTTP, owned by the API key that made them."""

from __future__ import annotations

import asyncio
import io
import json
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import connect

from asr.contract import ERRORS, ErrorCode
from asr.wer import word_error_rate
from asr_server.limits import Limits

from .conftest import ServerThread
from .helpers import closed_port, gateway
from .recordings_support import speech
from .sessions_support import (
    KEY_A,
    KEY_B,
    acall,
    audio_files,
    exists,
    get_json,
    listing,
    recording_settings,
    save_figures,
    stream_session,
    wait_job,
)

FAST = Limits(max_realtime_factor=10.0)
"""Tests send audio faster than real time."""


def _samples(body: bytes) -> tuple[np.ndarray, int]:
    samples, rate = sf.read(io.BytesIO(body), dtype="int16")
    return samples, int(rate)


@pytest.mark.slow
async def test_enhanced_session_audio_and_ownership(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    clip, pcm = speech(8)
    async with gateway(
        riva_server.uri,
        api_keys=(KEY_A, KEY_B),
        recording="optional",
        recordings=recording_settings(tmp_path),
        limits=FAST,
    ) as gw:
        base = gw.base_url
        headers = {"Authorization": f"Bearer {KEY_A}"}
        query = "?enhance_on_end=true&word_timestamps=true"
        async with connect(gw.url + query, additional_headers=headers) as ws:
            messages = await stream_session(ws, pcm, speed=4.0)
        end = messages[-1]
        assert end["type"] == "session.end", messages[-3:]
        session_id, job_id = end["session_id"], end["enhancement_job_id"]
        assert end["recording_id"].startswith("rec_") and job_id.startswith("job_")

        job = await wait_job(base, job_id, key=KEY_A)
        assert job["status"] == "completed", job
        wer_realtime = word_error_rate([clip.text], [end["transcript"]])
        wer_enhanced = word_error_rate([clip.text], [job["text"]])
        status, session = await get_json(f"{base}/v1/sessions/{session_id}", key=KEY_A)
        assert status == 200
        figures = {
            "audio_seconds": round(len(pcm) / 32_000, 1),
            "wer_realtime": round(wer_realtime, 4),
            "wer_enhanced": round(wer_enhanced, 4),
            "job_seconds": round(
                (
                    datetime.fromisoformat(job["updated_at"])
                    - datetime.fromisoformat(job["created_at"])
                ).total_seconds(),
                2,
            ),
        }
        figures["job_seconds_per_audio_minute"] = round(
            figures["job_seconds"] / (figures["audio_seconds"] / 60), 2
        )
        await save_figures(figures)
        assert wer_enhanced <= wer_realtime
        assert wer_enhanced < 0.15

        # The session: its finals as sent, with times, and the audio's length and link.
        assert session["state"] == "completed" and session["interface"] == "websocket"
        assert session["enhancement_job_id"] == job_id
        assert session["audio"]["recording_id"] == end["recording_id"]
        assert session["audio"]["duration_seconds"] == pytest.approx(len(pcm) / 32_000, abs=1e-3)
        sent_finals = [m for m in messages if m["type"] == "transcript.final" and m["text"]]
        assert [f["text"] for f in session["finals"]] == [f["text"] for f in sent_finals]
        assert [f["start"] for f in session["finals"]] == [f["start"] for f in sent_finals]
        assert all(f["words"] for f in job["finals"])

        # The audio is what was sent, as WAV and as FLAC.
        status, head, body = await acall(base + session["audio"]["url"], key=KEY_A)
        assert status == 200 and head["Content-Type"] == "audio/wav"
        samples, rate = _samples(body)
        assert rate == 16_000 and samples.tobytes() == pcm
        status, head, body = await acall(
            base + session["audio"]["url"], key=KEY_A, headers={"Accept": "audio/flac"}
        )
        assert status == 200 and head["Content-Type"] == "audio/flac"
        assert _samples(body)[0].tobytes() == pcm

        # The transcript in the other formats.
        job_url = f"{base}/v1/audio/transcriptions/{job_id}"
        for fmt, media, start in (
            ("text", "text/plain", job["text"].split()[0]),
            ("srt", "application/x-subrip", "1\n00:00:"),
            ("vtt", "text/vtt", "WEBVTT\n"),
        ):
            status, head, body = await acall(f"{job_url}?response_format={fmt}", key=KEY_A)
            assert status == 200 and head["Content-Type"].startswith(media)
            assert body.decode().startswith(start)

        # Listed for its owner; to another key it does not exist.
        status, page = await get_json(f"{base}/v1/sessions?limit=5", key=KEY_A)
        assert status == 200 and [s["id"] for s in page["sessions"]] == [session_id]
        assert page["next_cursor"] is None
        status, page = await get_json(f"{base}/v1/sessions", key=KEY_B)
        assert status == 200 and page["sessions"] == []
        for url, method in (
            (f"{base}/v1/sessions/{session_id}", "GET"),
            (f"{base}/v1/sessions/{session_id}/audio", "GET"),
            (job_url, "GET"),
            (f"{base}/v1/sessions/{session_id}", "DELETE"),
        ):
            status, _, _ = await acall(url, method=method, key=KEY_B)
            assert status == 404, (url, method)
        status, _, _ = await acall(f"{base}/v1/sessions")
        assert status == 401

        # Deleting removes the audio, the finals and the job.
        files = await asyncio.to_thread(audio_files, tmp_path)
        assert len(files) == 1
        status, _, body = await acall(
            f"{base}/v1/sessions/{session_id}", method="DELETE", key=KEY_A
        )
        assert status == 204 and body == b""
        for url in (f"{base}/v1/sessions/{session_id}", job_url):
            status, _, _ = await acall(url, key=KEY_A)
            assert status == 404
        assert not await asyncio.to_thread(exists, files[0])
        _, openapi = await get_json(f"{base}/openapi.json")
        for path in ("/v1/sessions/{session_id}/audio", "/v1/audio/transcriptions/{job_id}"):
            assert path in openapi["paths"], path


async def test_policy_off_refuses_recording_with_a_typed_error(tmp_path: Path) -> None:
    spec = ERRORS[ErrorCode.RECORDING_UNAVAILABLE]
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        async with connect(gw.url + "?record=true") as ws:
            messages = await stream_session(ws, b"", speed=1.0)
        assert [m["type"] for m in messages] == ["error"]
        assert messages[0]["code"] == "recording_unavailable"
        assert messages[0]["retryable"] is spec.retryable
        assert ws.close_code == spec.close_code
        async with connect(gw.url) as ws:
            assert json.loads(await ws.recv())["type"] == "session.begin"
            await ws.send(json.dumps({"type": "config", "enhance_on_end": True}))
            error = json.loads(await ws.recv())
        assert error["code"] == "recording_unavailable" and "enhance_on_end" in error["message"]
        assert ws.close_code == spec.close_code
        status, body = await get_json(gw.base_url + "/v1/sessions")
        assert status == 404 and "recording is off" in body["error"]
    assert not await asyncio.to_thread(listing, tmp_path)


async def test_policy_always_records_every_session(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    _, pcm = speech(1)
    async with gateway(
        riva_server.uri,
        recording="always",
        recordings=recording_settings(tmp_path),
        limits=FAST,
    ) as gw:
        async with connect(gw.url + "?record=false") as ws:
            messages = await stream_session(ws, pcm, speed=4.0)
        end = messages[-1]
        assert end["type"] == "session.end" and end["recording_id"] is not None
        assert end["enhancement_job_id"] is None
        status, page = await get_json(gw.base_url + "/v1/sessions")
        assert status == 200 and [s["id"] for s in page["sessions"]] == [end["session_id"]]
        assert page["sessions"][0]["enhancement_url"] is None
        status, _, body = await acall(gw.base_url + page["sessions"][0]["audio"]["url"])
        assert status == 200 and _samples(body)[0].tobytes() == pcm
