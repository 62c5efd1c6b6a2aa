"""The recordings layer's pure parts: policy, WAV repair, job transitions, retention,
enhancement pieces and tails, the migrations against the tables, the exports."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

import asr_server.recordings as recordings
from asr.client import ModelInfo
from asr.events import Alternative, Final, Word
from asr_server.recordings import JobState, RecordingPolicy, SessionState, decide_recording
from asr_server.recordings import jobs as machine
from asr_server.recordings.enhancement import (
    drop_doubtful_tail,
    enhancement_options,
    offset_final,
    plan_pieces,
)
from asr_server.recordings.jobs import JobFields, JobPolicy, LeaseLost
from asr_server.recordings.retention import RetentionCandidate, expired_sessions
from asr_server.recordings.tables import metadata
from asr_server.recordings.wav import WavFormatError, repair_wav, wav_header

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "record", "enhance", "expected"),
    [
        ("off", None, None, (False, False, False)),
        ("off", True, None, (False, False, True)),
        ("off", None, True, (False, False, True)),
        ("optional", None, None, (False, False, False)),
        ("optional", True, None, (True, False, False)),
        ("optional", False, True, (True, True, False)),  # enhance implies record
        ("always", None, None, (True, False, False)),
        ("always", False, None, (True, False, False)),  # no opting out
        ("always", None, True, (True, True, False)),
    ],
)
def test_policy(
    policy: str, record: bool | None, enhance: bool | None, expected: tuple[bool, bool, bool]
) -> None:
    decision = decide_recording(RecordingPolicy(policy), record=record, enhance_on_end=enhance)
    assert (decision.record, decision.enhance_on_end, decision.refusal is not None) == expected


def test_wav_repair_fixes_sizes_and_cuts_a_torn_sample(tmp_path: Path) -> None:
    pcm = np.arange(-800, 800, dtype=np.int16).tobytes()
    path = tmp_path / "a.wav"
    path.write_bytes(wav_header(16_000) + pcm + b"\x07")  # sizes 0, half a sample at the end
    assert repair_wav(path) == len(pcm)
    data = path.read_bytes()
    assert data == wav_header(16_000, len(pcm)) + pcm
    assert struct.unpack_from("<I", data, 4)[0] == 36 + len(pcm)
    samples, rate = sf.read(path, dtype="int16")
    assert rate == 16_000 and samples.tobytes() == pcm
    (tmp_path / "b.wav").write_bytes(b"not a wav at all, no no no, not at all, never ever")
    with pytest.raises(WavFormatError):
        repair_wav(tmp_path / "b.wav")


def test_job_transitions() -> None:
    policy = JobPolicy(lease_seconds=60, max_attempts=2, retry_seconds=10)
    queued = JobFields(state=JobState.QUEUED, attempts=0, run_after=NOW)
    assert not machine.claimable(queued, NOW - timedelta(seconds=1), policy)
    running = machine.claim(queued, NOW, "a", policy)
    assert (running.state, running.attempts, running.lease_owner) == (JobState.RUNNING, 1, "a")
    assert running.lease_expires_at == NOW + timedelta(seconds=60)
    assert not machine.claimable(running, NOW + timedelta(seconds=59), policy)
    with pytest.raises(ValueError):
        machine.claim(running, NOW, "b", policy)
    with pytest.raises(LeaseLost):
        machine.complete(running, NOW, "b")
    retry = machine.fail(running, NOW, "a", "boom", policy)
    assert (retry.state, retry.error, retry.lease_owner) == (JobState.QUEUED, "boom", None)
    assert retry.run_after == NOW + timedelta(seconds=10)
    again = machine.claim(retry, NOW + timedelta(seconds=10), "b", policy)
    later = NOW + timedelta(seconds=71)  # b died: its lease expired, no attempts left
    assert machine.exhausted(again, later, policy) and not machine.claimable(again, later, policy)
    with pytest.raises(LeaseLost):
        machine.renew(again, later, "b", policy)
    failed = machine.abandon(again, later, policy)
    assert failed.state is JobState.FAILED and "2 attempt" in (failed.error or "")
    done = machine.complete(
        machine.renew(again, NOW + timedelta(seconds=20), "b", policy), NOW, "b"
    )
    assert done.state is JobState.COMPLETED and done.lease_owner is None
    lost = machine.claim(queued, NOW, "a", policy)
    assert machine.claimable(lost, NOW + timedelta(seconds=60), policy)  # lease expired


def test_retention_picks_only_expired_finished_idle_sessions() -> None:
    def c(
        sid: str, ended_days: float | None, state: SessionState, job: JobState | None = None
    ) -> RetentionCandidate:
        ended = NOW - timedelta(days=ended_days) if ended_days is not None else None
        return RetentionCandidate(sid, state, NOW - timedelta(days=40), ended, job)

    done, cut, live = SessionState.COMPLETED, SessionState.INTERRUPTED, SessionState.RECORDING
    candidates = [
        c("old", 10, done),
        c("young", 6.9, done),
        c("old-cut", 8, cut),
        c("recording", None, live),
        c("busy", 30, done, JobState.RUNNING),
        c("queued", 30, done, JobState.QUEUED),
        c("job-done", 30, done, JobState.COMPLETED),
    ]
    assert expired_sessions(candidates, now=NOW, retention_days=7) == ["old", "old-cut", "job-done"]


def test_pieces_cut_at_the_quietest_moment() -> None:
    rate = 16_000
    rng = np.random.default_rng(0)
    loud = (rng.standard_normal(rate * 25) * 3000).astype(np.int16)
    loud[rate * 19 : rate * 19 + rate // 5] = 0  # a pause at 19.0-19.2 s
    pieces = plan_pieces(loud, rate, piece_seconds=20)
    assert pieces[0][0] == 0 and pieces[-1][1] == len(loud)
    assert all(a[1] == b[0] for a, b in zip(pieces, pieces[1:], strict=False))
    assert rate * 19 <= pieces[0][1] <= rate * 19 + rate // 5
    assert all(end - start <= rate * 20 for start, end in pieces)
    assert plan_pieces(loud[:100], rate, 20) == [(0, 100)]
    assert plan_pieces(loud[:0], rate, 20) == [(0, 0)]


def _final(text: str, confidences: list[float]) -> Final:
    words = tuple(
        Word(word=w, start_ms=100 * i, end_ms=100 * i + 90, confidence=c)
        for i, (w, c) in enumerate(zip(text.split(), confidences, strict=True))
    )
    return Final(text=text, words=words, alternatives=(Alternative(text=text, words=words),))


def test_doubtful_tails_go_and_times_move() -> None:
    tail = _final("art of printing. Thank you.", [0.9, 0.9, 0.95, 0.08, 0.98])
    trimmed = drop_doubtful_tail(tail)
    assert trimmed.text == "art of printing." and len(trimmed.words) == 3
    assert trimmed.alternatives[0].text == "art of printing."
    sure = _final("art of printing. Thank you.", [0.9, 0.9, 0.95, 0.6, 0.98])
    assert drop_doubtful_tail(sure) == sure
    one = _final("helps.", [0.05])
    assert drop_doubtful_tail(one) == one
    moved = offset_final(trimmed, 45_000)
    assert [w.start_ms for w in moved.words] == [45_000, 45_100, 45_200]
    assert moved.alternatives[0].words == moved.words
    assert moved.audio_processed == pytest.approx(45.0)


def test_enhancement_options_pick_offline_and_beam_on_embedded() -> None:
    embedded = [
        ModelInfo(name="whisper-tiny.en-cpu-asr-streaming", parameters={"type": "online"}),
        ModelInfo(name="whisper-tiny.en-cpu-asr-offline", parameters={"type": "offline"}),
    ]
    options = enhancement_options(embedded, 16_000)
    assert options.model == "whisper-tiny.en-cpu-asr-offline"
    assert options.custom_configuration == (("beam_size", "5"),)
    assert options.automatic_punctuation and options.word_time_offsets
    riva = [ModelInfo(name="parakeet-ctc-1.1b-en-us-asr-offline", parameters={})]
    options = enhancement_options(riva, 8_000)
    assert options.model == "parakeet-ctc-1.1b-en-us-asr-offline"
    assert options.custom_configuration == () and options.sample_rate_hz == 8_000
    assert enhancement_options([], 16_000).model is None


def test_migrations_create_the_tables(tmp_path: Path) -> None:
    from alembic import command
    from alembic.config import Config

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.begin() as connection:
        config = Config()
        config.set_main_option(
            "script_location", str(Path(recordings.__file__).parent / "migrations")
        )
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
        context = MigrationContext.configure(
            connection, opts={"version_table": "recordings_alembic_version"}
        )
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_exports_sorted_and_complete() -> None:
    assert recordings.__all__ == sorted(recordings.__all__)
    assert all(hasattr(recordings, name) for name in recordings.__all__)
