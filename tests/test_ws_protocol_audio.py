"""Audio into the sans-I/O WebSocket session: the backend started once, samples that are
not valid, frame size, a required config, and the ingest rate."""

from __future__ import annotations

import json
import math
import struct

import pytest

from asr.contract import ErrorCode, ErrorMessage, WarningCode, WarningMessage
from asr_server.limits import IngestRate, Limits
from asr_server.protocol import ForwardAudio, Send, StartBackend, State

from .helpers import SILENCE_100MS, assert_error, sent
from .ws_protocol_support import make


def test_first_audio_starts_the_backend_once() -> None:
    session, _ = make({"word_timestamps": ["true"]})
    first = session.receive_binary(SILENCE_100MS, 0.1)
    assert isinstance(first[0], StartBackend)
    assert first[0].options.word_time_offsets is True
    assert first[1] == ForwardAudio(SILENCE_100MS)
    assert session.receive_binary(SILENCE_100MS, 0.2) == [ForwardAudio(SILENCE_100MS)]
    assert session.audio_seconds == pytest.approx(0.2)


def test_odd_length_pcm16_is_invalid_audio() -> None:
    session, _ = make()
    assert_error(session.receive_binary(b"\x00\x01\x02", 0.1), ErrorCode.INVALID_AUDIO)


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_float32_is_invalid_audio(bad: float) -> None:
    session, _ = make({"encoding": ["float32"]})
    frame = struct.pack("<4f", 0.0, 0.1, bad, 0.0)
    assert_error(session.receive_binary(frame, 0.1), ErrorCode.INVALID_AUDIO)


def test_float32_not_whole_samples_is_invalid_audio() -> None:
    session, _ = make({"encoding": ["float32"]})
    assert_error(session.receive_binary(b"\x00" * 6, 0.1), ErrorCode.INVALID_AUDIO)


def test_frame_too_large() -> None:
    session, _ = make(max_frame_bytes=4096)
    assert_error(session.receive_binary(b"\x00" * 4098, 0.1), ErrorCode.FRAME_TOO_LARGE)
    session, _ = make(max_frame_bytes=4096)
    text = json.dumps({"type": "config", "boosted_words": ["x" * 50] * 100})
    assert_error(session.receive_text(text, 0.1), ErrorCode.FRAME_TOO_LARGE)


def test_config_required() -> None:
    session, _ = make(require_config=True)
    assert_error(session.receive_binary(SILENCE_100MS, 0.1), ErrorCode.CONFIG_REQUIRED)
    session, _ = make(require_config=True)
    session.receive_text('{"type": "config"}', 0.1)
    assert isinstance(session.receive_binary(SILENCE_100MS, 0.2)[0], StartBackend)
    session, _ = make({"sample_rate": ["16000"]}, require_config=True)  # query counts
    assert isinstance(session.receive_binary(SILENCE_100MS, 0.2)[0], StartBackend)


def test_real_time_audio_is_never_refused() -> None:
    session, _ = make(max_realtime_factor=2.0, burst_seconds=1.0)
    for i in range(36_000):  # an hour of 100 ms frames, on time
        actions = session.receive_binary(SILENCE_100MS, i * 0.1)
        assert not any(isinstance(a, Send) for a in actions), actions


def test_too_fast_after_burst_with_warning_first() -> None:
    session, _ = make(max_realtime_factor=2.0, burst_seconds=3.0)
    messages: list[object] = []
    now = 0.0
    for _ in range(200):  # 10x real time: 100 ms of audio every 10 ms
        actions = session.receive_binary(SILENCE_100MS, now)
        messages += sent(actions)
        now += 0.01
        if session.state is State.CLOSED:
            break
    warning, error = messages
    assert isinstance(warning, WarningMessage) and warning.code is WarningCode.AUDIO_TOO_FAST
    assert isinstance(error, ErrorMessage) and error.code is ErrorCode.TOO_FAST
    # The bucket (3 s burst + 1 s) drains at 10 - 2 = 8 s of audio per second: ~0.5 s in.
    assert 0.4 < now < 0.7
    assert error.seq == warning.seq + 1


def test_ingest_rate_refills() -> None:
    rate = IngestRate(Limits(max_realtime_factor=2.0, burst_seconds=0.0), now=0.0)
    assert rate.admit(1.0, 0.0)
    assert not rate.admit(0.1, 0.0)
    assert rate.admit(1.0, 0.5)
    assert rate.fill == pytest.approx(0.0)
