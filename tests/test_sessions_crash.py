"""``asr serve`` killed with SIGKILL, then started again on the same data: a session cut
mid-stream keeps its audio up to then and is ``interrupted``; an enhancement job cut
mid-run completes once its lease expired."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path

import soundfile as sf
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, paced

from .conftest import ServerThread, scaled
from .recordings_support import speech
from .sessions_support import ServeProcess, acall, get_json, stream_session, wait_job


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    return {
        "ASR_SERVER_RECORDING": "optional",
        "ASR_SERVER_RECORDINGS__DATA_DIR": str(data_dir),
        "ASR_SERVER_RECORDINGS__DATABASE_URL": f"sqlite:///{data_dir / 'recordings.db'}",
        "ASR_SERVER_RECORDINGS__REPLICA_ID": "gw-crash-test",
        "ASR_SERVER_RECORDINGS__JOB_POLL_SECONDS": "0.2",
        "ASR_SERVER_LIMITS__MAX_REALTIME_FACTOR": "10",
    } | extra


@contextlib.asynccontextmanager
async def _serving(gw: ServeProcess) -> AsyncIterator[ServeProcess]:
    await gw.start()
    try:
        yield gw
    finally:
        await gw.stop()


async def test_sigkill_mid_session_keeps_the_audio_and_marks_it_interrupted(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    _, pcm = speech(4)
    gw = ServeProcess(riva_server.uri, _env(tmp_path))
    sent = 0
    async with _serving(gw):
        async with connect(gw.ws + "?record=true") as ws:

            async def send() -> None:
                nonlocal sent
                with contextlib.suppress(ConnectionClosed):
                    async for chunk in paced(chunk_bytes(pcm, 100), PCM16_BYTES_PER_SECOND * 2):
                        await ws.send(chunk)
                        sent += len(chunk)

            sender = asyncio.create_task(send())
            async with asyncio.timeout(scaled(120)):
                while True:
                    message = json.loads(await ws.recv())
                    if message["type"] == "transcript.final" and message["text"]:
                        break
            # The gateway forwarded (and recorded) the audio this final covers.
            covered = round(message["audio_processed"] * PCM16_BYTES_PER_SECOND)
            await gw.kill()
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        session_id = message["session_id"]

    async with _serving(gw):
        status, session = await get_json(f"{gw.base}/v1/sessions/{session_id}")
        assert status == 200, session
        assert session["state"] == "interrupted" and session["ended_at"] is not None
        assert session["enhancement_job_id"] is None
        assert session["finals"][0]["text"] == message["text"]
        status, _, body = await acall(gw.base + session["audio"]["url"])
        assert status == 200
    samples, rate = sf.read(io.BytesIO(body), dtype="int16")
    kept = samples.tobytes()
    assert rate == 16_000
    assert covered - 3200 <= len(kept) <= sent < len(pcm)
    assert kept == pcm[: len(kept)]
    assert session["audio"]["duration_seconds"] == round(len(kept) / PCM16_BYTES_PER_SECOND, 3)


async def test_job_cut_by_sigkill_completes_after_restart(
    riva_server: ServerThread, tmp_path: Path
) -> None:
    _, pcm = speech(6)
    lease = str(scaled(3))
    gw = ServeProcess(
        riva_server.uri, _env(tmp_path, ASR_SERVER_RECORDINGS__JOB_LEASE_SECONDS=lease)
    )
    async with _serving(gw):
        async with connect(gw.ws + "?enhance_on_end=true") as ws:
            messages = await stream_session(ws, pcm, speed=8.0)
        end = messages[-1]
        assert end["type"] == "session.end", messages[-3:]
        job_id = end["enhancement_job_id"]
        running = await wait_job(gw.base, job_id, until="running")
        assert running["attempts"] == 1
        await gw.kill()

    async with _serving(gw):
        job = await wait_job(gw.base, job_id)
    assert job["status"] == "completed", job
    assert job["attempts"] == 2
    assert job["text"] and job["finals"]
