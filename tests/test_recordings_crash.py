"""A gateway killed with SIGKILL: the audio written so far survives, the next start marks
the session interrupted and repairs its WAV header; a job whose worker was killed is
resumed by another once the lease expired."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
import soundfile as sf

from asr_server.recordings import ENHANCE, JobRecord, JobState, Recordings, SessionState

from .conftest import scaled
from .recordings_support import BACKENDS, database_url, file_bytes, settings, speech

# The child: records a session and keeps writing until it is killed. Once `ready_bytes`
# are on disk it says so on stdout, then goes on writing 100 ms chunks.
RECORDER = """
import asyncio, json, os, sys
from pathlib import Path
from asr_server.recordings import Recordings, RecordingSettings

async def main() -> None:
    args = json.loads(sys.argv[1])
    pcm = Path(args["pcm"]).read_bytes()
    settings = RecordingSettings.model_validate(args["settings"])
    recordings = await Recordings.open(settings, run_jobs=False)
    recorder = await recordings.start_session(
        session_id="s-crash", key_id="key-a", interface="ws", enhance_on_end=True
    )
    path = Path(recorder.record.audio_path)
    ready = args["ready_bytes"]
    said = False
    for start in range(0, len(pcm), 3200):
        await recorder.write(pcm[start : start + 3200])
        await asyncio.sleep(0.002)
        if not said and path.stat().st_size >= 44 + ready:
            print("ready", flush=True)
            said = True
    print("done", flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""

# The child: a worker that claims the job and hangs in it until killed.
WORKER = """
import asyncio, json, sys
from asr_server.recordings import ENHANCE, Recordings, RecordingSettings

async def main() -> None:
    settings = RecordingSettings.model_validate(json.loads(sys.argv[1]))

    async def hang(job):
        print("claimed", job.id, job.attempts, flush=True)
        await asyncio.sleep(3600)
        return {}

    recordings = await Recordings.open(settings, handlers={ENHANCE: hang})
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def _child(script: str, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, *args, stdout=asyncio.subprocess.PIPE, env=dict(os.environ)
    )


async def _line(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), scaled(60))
    return line.decode().strip()


async def _kill(process: asyncio.subprocess.Process) -> None:
    process.send_signal(signal.SIGKILL)
    assert await asyncio.wait_for(process.wait(), scaled(10)) == -signal.SIGKILL


def _write(path: Path, data: bytes) -> None:
    path.write_bytes(data)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_sigkill_mid_session_leaves_readable_audio_and_interrupted_state(
    backend: str, tmp_path: Path
) -> None:
    _, pcm = speech(4)
    config = settings(await database_url(backend, tmp_path), tmp_path)
    source = tmp_path / "source.pcm"
    await asyncio.to_thread(_write, source, pcm)
    ready = len(pcm) // 3
    args = {"pcm": str(source), "settings": config.model_dump(mode="json"), "ready_bytes": ready}
    child = await _child(RECORDER, json.dumps(args))
    assert await _line(child) == "ready"
    await _kill(child)  # mid-write: it is still sending chunks

    async with await Recordings.open(config, run_jobs=False) as recordings:
        session = await recordings.get_session("key-a", "s-crash")
        assert session is not None
        assert session.state is SessionState.INTERRUPTED
        assert session.ended_at is not None
        # Interrupted sessions queue no enhancement: the session did not end as asked.
        assert session.enhancement_job_id is None
        samples, rate = await asyncio.to_thread(sf.read, session.audio_path, dtype="int16")
    kept = samples.tobytes()
    assert rate == 16_000
    assert ready <= len(kept) < len(pcm)
    assert kept == pcm[: len(kept)]
    assert session.duration_seconds == pytest.approx(len(kept) / 32_000)
    assert file_bytes(session.audio_path)[44:] == kept


@pytest.mark.parametrize("backend", BACKENDS)
async def test_job_of_a_killed_worker_resumes_after_its_lease(backend: str, tmp_path: Path) -> None:
    config = settings(await database_url(backend, tmp_path), tmp_path, job_lease_seconds=scaled(3))
    async with await Recordings.open(config, run_jobs=False) as recordings:
        recorder = await recordings.start_session(
            session_id="s-job", key_id="key-a", interface="ws", enhance_on_end=True
        )
        await recorder.write(b"\x00\x00" * 1600)
        ended = await recorder.end()
    assert ended is not None and ended.enhancement_job_id is not None
    job_id = ended.enhancement_job_id

    child = await _child(WORKER, config.model_dump_json())
    assert (await _line(child)).split() == ["claimed", job_id, "1"]
    await _kill(child)

    claims: list[JobRecord] = []

    async def finish(job: JobRecord) -> dict[str, object]:
        claims.append(job)
        return {"finals": [], "resumed": True}

    async with await Recordings.open(config, handlers={ENHANCE: finish}) as recordings:
        running = await recordings.get_job("key-a", job_id)
        assert running is not None and running.state is JobState.RUNNING  # lease still held
        for _ in range(int(scaled(200))):
            job = await recordings.get_job("key-a", job_id)
            if job is not None and job.state is JobState.COMPLETED:
                break
            await asyncio.sleep(0.05)
    assert job is not None and job.state is JobState.COMPLETED
    assert job.attempts == 2 and job.result == {"finals": [], "resumed": True}
    assert [c.id for c in claims] == [job_id]
