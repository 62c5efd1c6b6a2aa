"""Recorded sessions (issue 15) on NVIDIA's realtime API, on the embedded Riva server:
NVIDIA's own client recorded under ``ASR_SERVER_RECORDING=always``, a plain client asking
with ``?record=true&enhance_on_end=true`` under ``optional``; the sessions API then shows
their finals, audio and enhancement job to the key that made them, and to no other."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
from websockets.asyncio.client import connect

from asr.wer import normalize, word_error_rate

from .conftest import ServerThread, scaled
from .helpers import JFK, SECRET, gateway
from .realtime_protocol_support import event
from .realtime_support import (
    REFERENCE,
    completed,
    events_until_close,
    next_event,
    nvidia_transcribe,
    realtime_url,
    refused_with,
    send_pcm,
    shown_transcripts,
)
from .recordings_support import speech
from .sessions_support import KEY_A, KEY_B, acall, get_json, recording_settings, wait_job

RECORDED = "transcription_session.recorded"


def wav_pcm(body: bytes) -> tuple[bytes, int]:
    """The PCM16 samples of a WAV body, and its sample rate."""
    samples, rate = sf.read(io.BytesIO(body), dtype="int16")
    pcm: bytes = np.asarray(samples, dtype=np.int16).tobytes()
    return pcm, int(rate)


async def recorded_audio(base: str, session: dict[str, Any], key: str) -> bytes:
    """``GET /v1/sessions/{id}/audio`` as WAV: its PCM16 at 16 kHz."""
    status, head, body = await acall(base + session["audio"]["url"], key=key)
    assert status == 200 and head["Content-Type"] == "audio/wav"
    pcm, rate = wav_pcm(body)
    assert rate == 16_000
    return pcm


async def ended_session(base: str, session_id: str, key: str) -> dict[str, Any]:
    """``GET /v1/sessions/{id}`` once the recording is closed: NVIDIA's client leaves at
    the last completed, while the gateway is still closing it."""
    async with asyncio.timeout(scaled(60)):
        while True:
            status, session = await get_json(f"{base}/v1/sessions/{session_id}", key=key)
            assert status == 200, session
            if session["state"] != "recording":
                ended: dict[str, Any] = session
                return ended
            await asyncio.sleep(0.05)


def wer(reference: str, text: str) -> float:
    return word_error_rate([normalize(reference)], [normalize(text)])


@pytest.mark.slow
async def test_nvidia_client_is_recorded_when_recording_is_always(
    riva_server: ServerThread, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """NVIDIA's client, unchanged (``--mint-api-key``), asks for nothing: ``always``
    records its session, owned by its key, finals as it was sent them."""
    caplog.set_level(logging.INFO, logger="riva.client.realtime")
    async with gateway(
        riva_server.uri,
        api_keys=(KEY_A, KEY_B),
        token_secret=SECRET,
        recording="always",
        recordings=recording_settings(tmp_path),
    ) as gw:
        base = gw.base_url
        await nvidia_transcribe(gw, "--mint-api-key", KEY_A, "--word-time-offsets")
        shown = shown_transcripts(caplog)
        assert wer(REFERENCE, " ".join(shown)) <= 0.15, shown

        status, listing = await get_json(f"{base}/v1/sessions", key=KEY_A)
        assert status == 200
        [summary] = listing["sessions"]
        assert summary["interface"] == "realtime" and summary["id"].startswith("sess_")
        session = await ended_session(base, summary["id"], KEY_A)
        assert session["state"] == "completed", session
        assert session["enhancement_job_id"] is None  # not asked for
        assert [f["text"] for f in session["finals"]] == shown
        assert all(f["words"] for f in session["finals"])  # --word-time-offsets

        # The audio is what NVIDIA's client sent: the file's samples, all of them.
        pcm, _ = wav_pcm(await asyncio.to_thread(JFK.read_bytes))
        assert session["audio"]["duration_seconds"] == pytest.approx(len(pcm) / 32_000, abs=1e-3)
        assert await recorded_audio(base, session, KEY_A) == pcm

        # Another key sees nothing of it.
        status, _ = await get_json(f"{base}/v1/sessions/{summary['id']}", key=KEY_B)
        assert status == 404
        status, _, _ = await acall(base + session["audio"]["url"], key=KEY_B)
        assert status == 404
        status, other = await get_json(f"{base}/v1/sessions", key=KEY_B)
        assert status == 200 and other["sessions"] == []


@pytest.mark.slow
async def test_asked_recording_with_enhancement_when_optional(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    """A plain client asks with ``?record=true&enhance_on_end=true``: the ids come in
    ``transcription_session.recorded`` after the last completed; the enhancement job
    transcribes the recording at least as well as the live session did."""
    clip, pcm = speech(3)
    async with gateway(
        riva_server.uri,
        api_keys=(KEY_A, KEY_B),
        recording="optional",
        recordings=recording_settings(tmp_path),
    ) as gw:
        base = gw.base_url
        headers = {"Authorization": f"Bearer {KEY_A}"}
        url = realtime_url(gw, "?intent=transcription&record=true&enhance_on_end=true")
        async with connect(url, additional_headers=headers) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            await send_pcm(ws, pcm)
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
            assert ws.close_code == 1000
        finals = completed(events)
        last, recorded = events[-2], events[-1]
        assert last["type"] == finals[-1]["type"] and last["is_last_result"], events[-3:]
        assert recorded["type"] == RECORDED, events[-3:]
        recording_id, job_id = recorded["recording_id"], recorded["enhancement_job_id"]
        assert recording_id.startswith("rec_") and job_id.startswith("job_")

        # The session: its finals as sent (the last one counted once), the audio's length.
        live = list(dict.fromkeys((f["item_id"], f["transcript"]) for f in finals))
        live_texts = [text for _, text in live if text]
        status, listing = await get_json(f"{base}/v1/sessions", key=KEY_A)
        [summary] = listing["sessions"]
        status, session = await get_json(f"{base}/v1/sessions/{summary['id']}", key=KEY_A)
        assert status == 200 and session["interface"] == "realtime"
        assert session["audio"]["recording_id"] == recording_id
        assert session["enhancement_job_id"] == job_id
        assert [f["text"] for f in session["finals"]] == live_texts
        assert session["audio"]["duration_seconds"] == pytest.approx(len(pcm) / 32_000, abs=1e-3)
        assert await recorded_audio(base, session, KEY_A) == pcm

        # The enhancement: the whole recording offline, at least as good as live.
        job = await wait_job(base, job_id, key=KEY_A)
        assert job["status"] == "completed", job
        wer_live = wer(clip.text, " ".join(live_texts))
        wer_enhanced = wer(clip.text, job["text"])
        print(
            "realtime recording figures:",
            json.dumps(
                {
                    "audio_seconds": round(len(pcm) / 32_000, 1),
                    "wer_realtime": round(wer_live, 4),
                    "wer_enhanced": round(wer_enhanced, 4),
                }
            ),
        )
        assert wer_enhanced <= wer_live and wer_enhanced < 0.15

        # Another key: 404 for the session, its audio and its job.
        status, _ = await get_json(f"{base}/v1/sessions/{summary['id']}", key=KEY_B)
        assert status == 404
        status, _ = await get_json(f"{base}/v1/audio/transcriptions/{job_id}", key=KEY_B)
        assert status == 404

        # Not asked for under ``optional``: not recorded, no recorded event.
        async with connect(realtime_url(gw), additional_headers=headers) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            await send_pcm(ws, pcm[: 2 * 32_000])
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
        assert events[-1]["is_last_result"] and RECORDED not in {e["type"] for e in events}
        status, listing = await get_json(f"{base}/v1/sessions", key=KEY_A)
        assert [s["id"] for s in listing["sessions"]] == [summary["id"]]


async def test_recording_options_refused_where_recording_is_off(
    riva_server: ServerThread,
) -> None:
    """``?record=true`` on a server that records nothing, and an invalid value: refused
    before any audio, ``recording_unavailable`` / ``invalid_config``, close 4002."""
    async with gateway(riva_server.uri) as gw:
        for query, code in [
            ("&record=true", "recording_unavailable"),
            ("&enhance_on_end=true", "recording_unavailable"),
            ("&record=maybe", "invalid_config"),
        ]:
            async with connect(realtime_url(gw, "?intent=transcription" + query)) as ws:
                events = await events_until_close(ws)
            message = refused_with(events, ws, code, 4002)
            assert "record" in message or "enhance_on_end" in message, message


async def test_a_recording_that_cannot_be_kept_leaves_the_transcript(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    """The audio folder cannot be made (a file stands where it goes): the session is
    transcribed all the same, and its end says nothing was kept."""
    await asyncio.to_thread((tmp_path / "audio").write_bytes, b"")
    async with gateway(
        riva_server.uri, recording="always", recordings=recording_settings(tmp_path)
    ) as gw:
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            pcm, _ = wav_pcm(await asyncio.to_thread(JFK.read_bytes))
            await send_pcm(ws, pcm)
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
            assert ws.close_code == 1000
    texts = dict.fromkeys(f["transcript"] for f in completed(events))
    assert wer(REFERENCE, " ".join(texts)) <= 0.15, events
    assert events[-1] == {
        "type": RECORDED,
        "event_id": events[-1]["event_id"],
        "recording_id": None,
        "enhancement_job_id": None,
    }
