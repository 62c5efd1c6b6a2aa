"""Shared by the sessions API tests: settings, HTTP calls, a recorded WebSocket session,
``asr serve`` in a child process. No tests here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection

from asr_server.recordings import RecordingSettings

from .conftest import scaled
from .helpers import receive_all, send_audio

KEY_A = "ak_sessions_owner_a_0123456789"
KEY_B = "ak_sessions_other_b_9876543210"


def recording_settings(data_dir: Path, **overrides: object) -> RecordingSettings:
    """Recordings in ``data_dir``, SQLite, a fixed replica name, jobs polled often."""
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": f"sqlite:///{data_dir / 'recordings.db'}",
        "replica_id": "sessions-test",
        "job_poll_seconds": 0.2,
    }
    return RecordingSettings.model_validate(values | overrides)


def call(
    url: str, *, method: str = "GET", key: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """An HTTP request (blocking): status, headers, body; error statuses included."""
    head = dict(headers or {})
    if key is not None:
        head["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, headers=head, method=method)
    try:
        with urllib.request.urlopen(request, timeout=scaled(30)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def audio_files(data_dir: Path) -> list[Path]:
    """The recordings' WAV files under ``data_dir`` (sync: the tests' loop only waits)."""
    return sorted(data_dir.glob("audio/**/*.wav"))


def listing(folder: Path) -> list[Path]:
    return sorted(folder.iterdir())


def exists(path: Path) -> bool:
    return path.exists()


async def save_figures(figures: dict[str, Any]) -> None:
    """Print the figures; also write them to ``$ASR_SESSIONS_FIGURES`` when set."""
    print("sessions API figures:", json.dumps(figures))
    if target := os.environ.get("ASR_SESSIONS_FIGURES"):
        await asyncio.to_thread(Path(target).write_text, json.dumps(figures))


async def acall(url: str, **kwargs: Any) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(call, url, **kwargs)


async def get_json(url: str, **kwargs: Any) -> tuple[int, Any]:
    status, _, body = await acall(url, **kwargs)
    return status, json.loads(body) if body else None


async def wait_job(base: str, job_id: str, *, key: str | None = None, until: str = "") -> Any:
    """Poll the job until its status is ``until`` (or completed/failed when empty)."""
    done = (until,) if until else ("completed", "failed")
    async with asyncio.timeout(scaled(600)):
        while True:
            status, job = await get_json(f"{base}/v1/audio/transcriptions/{job_id}", key=key)
            assert status == 200, job
            if job["status"] in done:
                return job
            await asyncio.sleep(0.02 if until else 0.2)


async def stream_session(
    ws: ClientConnection, pcm: bytes, *, speed: float, stop: asyncio.Event | None = None
) -> list[dict[str, Any]]:
    """Send ``pcm`` paced at ``speed`` x real time then ``end``; every message until close."""
    sender = asyncio.create_task(send_audio(ws, pcm, speed=speed))
    try:
        return await receive_all(ws, timeout=300)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


class ServeProcess:
    """``asr serve`` in a child process with ``ASR_SERVER_*`` settings, so it can be
    killed with SIGKILL and started again on the same data."""

    def __init__(self, riva_uri: str, env: dict[str, str]) -> None:
        self.riva_uri = riva_uri
        self.env = env
        self.proc: asyncio.subprocess.Process | None = None
        self.port = 0

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/audio/transcriptions/stream"

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "asr", "serve", "--host", "127.0.0.1", "--port", "0"),
            *("--server", self.riva_uri),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
            env=os.environ | self.env,
        )
        assert self.proc.stdout is not None
        async with asyncio.timeout(scaled(60)):
            line = (await self.proc.stdout.readline()).decode()
        found = re.search(r"on http://127\.0\.0\.1:(\d+)", line)
        assert found, line
        self.port = int(found.group(1))

    async def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(self.proc.wait(), scaled(10)) == -signal.SIGKILL

    async def stop(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), scaled(30))
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
