"""Recorded sessions on SQLite and on a real PostgreSQL: audio, finals, owners, paging,
deletion, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.events import Final, Word
from asr_server.recordings import (
    InvalidCursor,
    JobState,
    Recordings,
    RecordingSettings,
    SessionState,
)

from .recordings_support import (
    BACKENDS,
    FakeClock,
    chunks,
    database_url,
    exists,
    file_bytes,
    settings,
    speech,
)


@pytest.fixture(params=BACKENDS)
async def config(request: pytest.FixtureRequest, tmp_path: Path) -> RecordingSettings:
    return settings(await database_url(request.param, tmp_path), tmp_path)


def final(text: str, start_ms: int) -> Final:
    words = tuple(
        Word(word=w, start_ms=start_ms + 300 * i, end_ms=start_ms + 300 * i + 250, confidence=0.9)
        for i, w in enumerate(text.split())
    )
    return Final(text=text, confidence=0.8, words=words, audio_processed=start_ms / 1000 + 1)


async def test_audio_and_finals_read_back_exactly(config: RecordingSettings) -> None:
    _, pcm = speech(3)
    finals = [final("printing in the only sense", 0), final("in being comparatively modern", 9000)]
    async with await Recordings.open(config) as recordings:
        recorder = await recordings.start_session(
            session_id="s-audio", key_id="key-a", interface="ws"
        )
        for chunk in chunks(pcm, 3333):  # odd sizes: samples split across chunks
            await recorder.write(chunk)
        for item in finals:
            await recorder.add_final(item)
        ended = await recorder.end()
        stored = await recordings.get_session("key-a", "s-audio")
    assert ended is not None and stored == ended
    assert stored.state is SessionState.COMPLETED
    assert stored.ended_at is not None and stored.ended_at >= stored.created_at
    assert stored.finals == tuple(finals)
    assert stored.duration_seconds == pytest.approx(len(pcm) / 32_000)
    assert (stored.sample_rate, stored.audio_format) == (16_000, "wav/pcm_s16le")
    assert stored.recording_id.startswith("rec_") and stored.enhancement_job_id is None
    samples, rate = sf.read(stored.audio_path, dtype="int16")
    assert rate == 16_000
    assert samples.tobytes() == pcm
    assert file_bytes(stored.audio_path)[44:] == pcm


async def test_another_key_finds_nothing_and_cannot_delete(config: RecordingSettings) -> None:
    async with await Recordings.open(config) as recordings:
        recorder = await recordings.start_session(
            session_id="s-owned", key_id="key-a", interface="ws", enhance_on_end=True
        )
        await recorder.write(b"\x01\x00" * 1600)
        ended = await recorder.end()
        assert ended is not None and ended.enhancement_job_id is not None
        assert await recordings.get_session("key-b", "s-owned") is None
        assert (await recordings.list_sessions("key-b")).sessions == ()
        assert await recordings.get_job("key-b", ended.enhancement_job_id) is None
        assert await recordings.delete_session("key-b", "s-owned") is False
        assert exists(ended.audio_path)
        assert await recordings.get_session("key-a", "s-owned") == ended
        job = await recordings.get_job("key-a", ended.enhancement_job_id)
        assert job is not None and job.state is JobState.QUEUED


async def test_listing_pages_newest_first(config: RecordingSettings) -> None:
    clock = FakeClock()
    async with await Recordings.open(config, clock=clock) as recordings:
        for n in range(5):
            recorder = await recordings.start_session(
                session_id=f"s-{n}", key_id="key-a", interface="ws"
            )
            await recorder.end()
            clock.advance(seconds=1)
        other = await recordings.start_session(session_id="s-x", key_id="key-b", interface="ws")
        await other.end()
        seen: list[list[str]] = []
        cursor: str | None = None
        while True:
            page = await recordings.list_sessions("key-a", limit=2, cursor=cursor)
            seen.append([s.id for s in page.sessions])
            assert all(s.finals == () for s in page.sessions)
            cursor = page.next_cursor
            if cursor is None:
                break
        with pytest.raises(InvalidCursor):
            await recordings.list_sessions("key-a", cursor="not-a-cursor")
    assert seen == [["s-4", "s-3"], ["s-2", "s-1"], ["s-0"]]


async def test_delete_removes_audio_finals_and_jobs(config: RecordingSettings) -> None:
    async with await Recordings.open(config) as recordings:
        recorder = await recordings.start_session(
            session_id="s-del", key_id="key-a", interface="ws", enhance_on_end=True
        )
        await recorder.write(b"\x00\x10" * 8000)
        await recorder.add_final(final("gone soon", 0))
        ended = await recorder.end()
        assert ended is not None and ended.enhancement_job_id is not None
        path = Path(ended.audio_path)
        assert exists(path)
        assert await recordings.delete_session("key-a", "s-del") is True
        assert not exists(path)
        assert await recordings.get_session("key-a", "s-del") is None
        assert await recordings.get_job("key-a", ended.enhancement_job_id) is None
        assert await recordings.delete_session("key-a", "s-del") is False
        # The same id can be recorded again: nothing of the old one is left behind.
        again = await recordings.start_session(session_id="s-del", key_id="key-a", interface="ws")
        reborn = await again.end()
        assert reborn is not None and reborn.finals == ()


async def test_retention_deletes_only_old_sessions(config: RecordingSettings) -> None:
    now = FakeClock().now
    clock = FakeClock(now - timedelta(days=30))
    retained = config.model_copy(update={"retention_days": 7.0, "sweep_interval_seconds": 0.05})
    async with await Recordings.open(retained, clock=clock, run_sweeper=False) as recordings:
        # Started 20 days ago and still recording: not over, so kept.
        clock.now = now - timedelta(days=20)
        live = await recordings.start_session(session_id="live", key_id="key-a", interface="ws")
        paths = {}
        for name, age in (("old", 10.0), ("week", 6.0), ("new", 1.0), ("edge", 7.01)):
            clock.now = now - timedelta(days=age + 0.5)
            recorder = await recordings.start_session(
                session_id=name, key_id="key-b" if name == "edge" else "key-a", interface="ws"
            )
            await recorder.write(np.arange(1600, dtype=np.int16).tobytes())
            clock.now = now - timedelta(days=age)  # ended at this age
            ended = await recorder.end()
            assert ended is not None
            paths[name] = Path(ended.audio_path)
        clock.now = now
        assert await recordings.sweep(now) == 2
        kept = {s.id for s in (await recordings.list_sessions("key-a")).sessions}
        assert kept == {"live", "week", "new"}
        assert (await recordings.list_sessions("key-b")).sessions == ()
        assert not exists(paths["old"]) and not exists(paths["edge"])
        assert exists(paths["week"]) and exists(paths["new"])
        await live.end()

    # The sweeper task does it by itself, at the time its clock gives.
    clock.now = now + timedelta(days=1.5)
    async with await Recordings.open(retained, clock=clock) as recordings:
        for _ in range(200):
            kept = {s.id for s in (await recordings.list_sessions("key-a")).sessions}
            if kept == {"live", "new"}:
                break
            await asyncio.sleep(0.05)
        assert kept == {"live", "new"}
        assert not exists(paths["week"])
