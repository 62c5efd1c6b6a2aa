"""Enhancement on the embedded Riva server: a long multi-utterance session streamed and
recorded, then recognised whole (in pieces) by its job, scored against the references."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from asr.client import RivaASRClient
from asr.events import Final
from asr.options import RecognitionOptions
from asr.wer import word_error_rate
from asr_server.recordings import JobRecord, JobState, Recordings

from .conftest import ServerThread, scaled
from .recordings_support import chunks, database_url, settings, speech

CLIPS = 16
PIECE_SECONDS = 45.0


async def _wait_done(recordings: Recordings, job_id: str) -> JobRecord:
    async with asyncio.timeout(scaled(600)):
        while True:
            job = await recordings.get_job("key-a", job_id)
            assert job is not None
            if job.state in (JobState.COMPLETED, JobState.FAILED):
                return job
            await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_enhancement_is_at_least_as_good_as_the_real_time_finals(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    clip, pcm = speech(CLIPS)
    duration = len(pcm) / 32_000
    config = settings(
        await database_url("sqlite", tmp_path), tmp_path, enhancement_piece_seconds=PIECE_SECONDS
    )
    async with (
        RivaASRClient(uri=riva_server.uri) as client,
        await Recordings.open(config, riva=client) as recordings,
    ):
        recorder = await recordings.start_session(
            session_id="s-long", key_id="key-a", interface="ws", enhance_on_end=True
        )

        async def audio() -> AsyncIterator[bytes]:
            for chunk in chunks(pcm):
                await recorder.write(chunk)
                yield chunk

        async for event in client.stream(audio(), RecognitionOptions(automatic_punctuation=True)):
            if isinstance(event, Final):
                await recorder.add_final(event)
        session = await recorder.end()
        assert session is not None and session.enhancement_job_id is not None
        job = await _wait_done(recordings, session.enhancement_job_id)

    assert job.state is JobState.COMPLETED, job.error
    assert job.result is not None
    realtime = " ".join(f.text for f in session.finals)
    enhanced = " ".join(f.text for f in job.finals)
    wer_realtime = word_error_rate([clip.text], [realtime])
    wer_enhanced = word_error_rate([clip.text], [enhanced])
    seconds_per_minute = job.result["processing_seconds"] / (duration / 60)
    figures = {
        "audio_seconds": round(duration, 1),
        "realtime_finals": len(session.finals),
        "enhanced_finals": len(job.finals),
        "pieces": job.result["pieces"],
        "wer_realtime": round(wer_realtime, 4),
        "wer_enhanced": round(wer_enhanced, 4),
        "job_seconds": round(job.result["processing_seconds"], 2),
        "job_seconds_per_audio_minute": round(seconds_per_minute, 2),
    }
    print("enhancement figures:", json.dumps(figures))
    if os.environ.get("ASR_RECORDINGS_FIGURES"):
        await asyncio.to_thread(
            Path(os.environ["ASR_RECORDINGS_FIGURES"]).write_text, json.dumps(figures)
        )
    # Cut at a pause inside each piece's last tenth: ceil(duration / piece) or one more.
    assert job.result["pieces"] in (
        -(-duration // PIECE_SECONDS),
        -(-duration // PIECE_SECONDS) + 1,
    )
    assert job.result["model"] == "whisper-tiny.en-cpu-asr-offline"
    assert wer_enhanced <= wer_realtime
    assert wer_enhanced < 0.12
    # Word times on the recording's clock across pieces: in order, inside the audio.
    starts = [w.start_ms for f in job.finals for w in f.words]
    assert starts == sorted(starts) and 0 <= starts[0] and starts[-1] < duration * 1000
    assert starts[-1] > (duration - 10) * 1000  # the last piece's words, offset back
    assert all(f.words for f in job.finals)
