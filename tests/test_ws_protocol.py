"""The sans-I/O WebSocket session: plain calls in, actions out, no sockets, a fake clock.
Here the opening (query string, ``session.begin``, refusals) and the client's text
messages; audio, results and recording are in the ``test_ws_protocol_*`` modules."""

from __future__ import annotations

import json

import numpy as np
import pytest

from asr.contract import ErrorCode, SessionBegin, SessionUpdated, WarningCode, WarningMessage
from asr_server.limits import Limits
from asr_server.protocol import (
    FinishUtterance,
    ForwardAudio,
    Session,
    StartBackend,
    State,
    config_from_query,
)

from .helpers import SILENCE_100MS, assert_error, sent
from .ws_protocol_support import make


def test_open_sends_session_begin_with_config_and_limits() -> None:
    session, actions = make({"sample_rate": ["48000"], "word_timestamps": ["true"]})
    [begin] = sent(actions)
    assert isinstance(begin, SessionBegin)
    assert (begin.seq, begin.session_id) == (0, "s1")
    assert begin.config.sample_rate == 48_000 and begin.config.word_timestamps is True
    assert begin.limits.max_frame_bytes == Limits().max_frame_bytes
    assert session.state is State.OPEN


def test_query_string_parsing() -> None:
    config = config_from_query(
        {
            "encoding": ["float32"],
            "boosted_words": ["alpha,beta", "gamma"],
            "endpointing": ['{"stop_history": 800}'],
            "punctuation": ["false"],
            "api_key": ["secret"],
        }
    )
    assert config.encoding == "float32"
    assert config.boosted_words == ("alpha", "beta", "gamma")
    assert config.endpointing is not None and config.endpointing.stop_history == 800
    assert config.punctuation is False
    options = config.recognition_options()
    assert options.sample_rate_hz == 16_000 and options.automatic_punctuation is False
    for bad in (
        {"encoding": ["mulaw"]},
        {"sample_rate": ["44"]},
        {"colour": ["blue"]},
        {"language": ["en-US", "de-DE"]},
        {"endpointing": ["{not json"]},
    ):
        with pytest.raises(ValueError):
            config_from_query(bad)


@pytest.mark.parametrize(
    "query", [{"encoding": ["mulaw"]}, {"sample_rate": ["0"]}, {"nonsense": ["1"]}]
)
def test_bad_query_is_invalid_config(query: dict[str, list[str]]) -> None:
    session, actions = make(query)
    error = assert_error(actions, ErrorCode.INVALID_CONFIG)
    assert error.seq == 0
    assert session.state is State.CLOSED
    assert session.receive_binary(SILENCE_100MS, 0.1) == []  # closed: ignored


def test_refuse_before_open_is_the_first_message() -> None:
    session = Session(session_id="s1", limits=Limits(), now=0.0)
    error = assert_error(session.refuse(ErrorCode.UNAUTHORIZED, "no key"), ErrorCode.UNAUTHORIZED)
    assert error.seq == 0
    assert session.refuse(ErrorCode.INTERNAL_ERROR, "again") == []


# --- client messages -----------------------------------------------------------------


def test_config_message_merges_over_query_and_resets_decoder() -> None:
    session, _ = make(
        {"sample_rate": ["48000"], "language": ["en-GB"]}, min_finalize_audio_seconds=0
    )
    actions = session.receive_text(json.dumps({"type": "config", "encoding": "float32"}), 0.1)
    [updated] = sent(actions)
    assert isinstance(updated, SessionUpdated) and updated.seq == 1
    assert updated.config.encoding == "float32"
    assert updated.config.sample_rate == 48_000 and updated.config.language == "en-GB"
    # 100 ms of float32 at 48 kHz comes out as 100 ms of PCM16 at 16 kHz (give or take the
    # resampler's delay, flushed at the end of the utterance).
    audio = np.zeros(4800, dtype="<f4").tobytes()
    out = session.receive_binary(audio, 0.2)
    assert isinstance(out[0], StartBackend)
    forwarded = sum(len(a.pcm16) for a in out if isinstance(a, ForwardAudio))
    tail = session.receive_text('{"type": "finalize"}', 0.3)
    forwarded += sum(len(a.pcm16) for a in tail if isinstance(a, ForwardAudio))
    assert forwarded == 3200
    assert isinstance(tail[-1], FinishUtterance)


def test_config_after_audio_is_ignored_with_a_warning() -> None:
    session, _ = make()
    session.receive_binary(SILENCE_100MS, 0.1)
    [warning] = sent(session.receive_text('{"type": "config", "sample_rate": 8000}', 0.2))
    assert isinstance(warning, WarningMessage) and warning.code is WarningCode.CONFIG_IGNORED
    assert session.config.sample_rate == 16_000
    assert session.receive_text('{"type": "config", "sample_rate": 8000}', 0.3) == []  # once


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("{not json", ErrorCode.INVALID_JSON),
        ("[1, 2]", ErrorCode.INVALID_JSON),
        ('"end"', ErrorCode.INVALID_JSON),
        ('{"kind": "end"}', ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ('{"type": "flush"}', ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ('{"type": 3}', ErrorCode.UNKNOWN_MESSAGE_TYPE),
        ('{"type": "finalize", "now": true}', ErrorCode.INVALID_MESSAGE),
        ('{"type": "config", "encoding": "opus"}', ErrorCode.INVALID_CONFIG),
        ('{"type": "config", "sample_rate": 1000000}', ErrorCode.INVALID_CONFIG),
        ('{"type": "config", "volume": 11}', ErrorCode.INVALID_CONFIG),
    ],
)
def test_bad_text_frames(text: str, code: ErrorCode) -> None:
    session, _ = make()
    error = assert_error(session.receive_text(text, 0.1), code)
    assert error.seq == 1
    assert session.state is State.CLOSED


def test_keepalive_has_no_reply_and_resets_idle_timeout() -> None:
    session, _ = make(idle_timeout_seconds=10)
    assert session.deadline() == 10
    assert session.receive_text('{"type": "keepalive"}', 8.0) == []
    assert session.deadline() == 18
    assert session.tick(17.9) == []
    assert_error(session.tick(18.0), ErrorCode.IDLE_TIMEOUT)
    assert session.deadline() is None


def test_session_too_long() -> None:
    session, _ = make(max_session_seconds=60, idle_timeout_seconds=30)
    for t in range(0, 60, 10):
        assert session.receive_text('{"type": "keepalive"}', float(t)) == []
    assert session.deadline() == 60
    assert_error(session.tick(60.0), ErrorCode.SESSION_TOO_LONG)
