"""The sans-I/O WebSocket session: plain calls in, actions out, no sockets, a fake clock."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from asr.contract import (
    CloseCode,
    ErrorCode,
    ErrorMessage,
    SessionBegin,
    SessionEnd,
    SessionUpdated,
    TranscriptFinal,
    TranscriptPartial,
    VadSpeechEnd,
    VadSpeechStart,
    WarningCode,
    WarningMessage,
)
from asr.errors import (
    AudioFormatError,
    AuthenticationError,
    CircuitOpenError,
    InvalidArgumentError,
    NotFoundError,
    UnavailableError,
)
from asr.events import Final, Partial, Word
from asr_server.limits import IngestRate, Limits
from asr_server.protocol import (
    Action,
    Close,
    EndAudio,
    EndRecording,
    FinishUtterance,
    ForwardAudio,
    Send,
    Session,
    StartBackend,
    StartRecording,
    State,
    config_from_query,
    error_code_for,
)
from asr_server.recordings.policy import RecordingPolicy

from .helpers import SILENCE_100MS, assert_error, sent


def make(
    query: dict[str, list[str]] | None = None,
    *,
    require_config: bool = False,
    recording: RecordingPolicy = RecordingPolicy.OFF,
    **limits: float,
) -> tuple[Session, list[Action]]:
    session = Session(
        session_id="s1",
        limits=Limits(**limits),
        now=0.0,
        query=query,
        require_config=require_config,
        recording=recording,
    )
    return session, session.open()


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


# --- audio ---------------------------------------------------------------------------


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


# --- results -------------------------------------------------------------------------


def feed(session: Session) -> None:
    session.receive_binary(SILENCE_100MS, 0.1)


def test_partials_then_final_with_vad_events_and_session_times() -> None:
    session, _ = make()
    feed(session)
    out = sent(
        session.backend_event(
            Partial(text="ask", audio_processed=1.0), offset=0.0, forced=False, now=1
        )
    )
    assert [type(m) for m in out] == [VadSpeechStart, TranscriptPartial]
    out += sent(
        session.backend_event(
            Partial(text="ask not", audio_processed=1.5), offset=0.0, forced=False, now=1
        )
    )
    final = Final(
        text="Ask not.",
        confidence=0.9,
        words=(
            Word(word="Ask", start_ms=700, end_ms=900),
            Word(word="not", start_ms=950, end_ms=1400),
        ),
        audio_processed=2.0,
    )
    out += sent(session.backend_event(final, offset=0.0, forced=False, now=2))
    kinds = [type(m) for m in out]
    assert kinds == [
        VadSpeechStart,
        TranscriptPartial,
        TranscriptPartial,
        VadSpeechEnd,
        TranscriptFinal,
    ]
    assert [m.seq for m in out] == [1, 2, 3, 4, 5]  # type: ignore[attr-defined]
    last = out[-1]
    assert isinstance(last, TranscriptFinal)
    assert (last.text, last.start, last.end, last.is_speech_final) == ("Ask not.", 0.7, 1.4, True)
    assert last.confidence == 0.9
    partial = out[1]
    assert isinstance(partial, TranscriptPartial)
    assert (partial.text, partial.start, partial.end) == ("ask", 0.0, 1.0)


def test_results_of_a_later_stream_are_shifted_by_its_offset() -> None:
    session, _ = make()
    feed(session)
    final = Final(
        text="again", words=(Word(word="again", start_ms=200, end_ms=600),), audio_processed=1.0
    )
    out = sent(session.backend_event(final, offset=5.0, forced=True, now=7))
    assert [type(m) for m in out] == [VadSpeechStart, VadSpeechEnd, TranscriptFinal]
    last = out[-1]
    assert isinstance(last, TranscriptFinal)
    assert (last.start, last.end, last.audio_processed) == (5.2, 5.6, 6.0)
    assert last.words[0].start_ms == 5200 and last.words[0].end_ms == 5600
    assert last.is_speech_final is False
    # Without word times a partial starts where the previous final ended.
    out = sent(
        session.backend_event(
            Partial(text="and", audio_processed=2.0), offset=5.0, forced=False, now=8
        )
    )
    partial = out[-1]
    assert isinstance(partial, TranscriptPartial) and (partial.start, partial.end) == (5.6, 7.0)


def test_empty_final_for_silence_is_dropped() -> None:
    session, _ = make()
    feed(session)
    assert session.backend_event(Final(text=""), offset=0.0, forced=True, now=1) == []


def test_finalize_flushes_only_when_audio_was_sent() -> None:
    session, _ = make(min_finalize_audio_seconds=0)
    assert session.receive_text('{"type": "finalize"}', 0.1) == []
    feed(session)
    assert session.receive_text('{"type": "finalize"}', 0.2) == [FinishUtterance()]
    assert session.receive_text('{"type": "finalize"}', 0.3) == []


def test_end_drains_then_session_end_and_close_1000() -> None:
    session, _ = make()
    feed(session)
    assert session.receive_text('{"type": "end"}', 0.2) == [EndAudio()]
    assert session.state is State.DRAINING
    assert session.deadline() == Limits().max_session_seconds  # no idle timeout while draining
    # Frames after `end` are ignored, with one warning.
    [warning] = sent(session.receive_binary(SILENCE_100MS, 0.3))
    assert isinstance(warning, WarningMessage) and warning.code is WarningCode.IGNORED_AFTER_END
    assert session.receive_text('{"type": "finalize"}', 0.4) == []
    final = Final(text="hello there")
    session.backend_event(final, offset=0.0, forced=True, now=0.5)
    actions = session.backend_done(0.6)
    end, close = actions
    assert isinstance(end, Send) and isinstance(end.message, SessionEnd)
    assert end.message.transcript == "hello there" and end.message.finals == 1
    assert end.message.audio_seconds == pytest.approx(0.1)
    assert close == Close(CloseCode.NORMAL, "session ended")
    # mypy keeps the DRAINING asserted above across the calls that change the state.
    assert session.state is State.CLOSED  # type: ignore[comparison-overlap]


def test_end_without_audio_ends_at_once() -> None:
    session, _ = make()
    [end, close] = session.receive_text('{"type": "end"}', 0.1)
    assert isinstance(end, Send) and isinstance(end.message, SessionEnd)
    assert end.message.transcript == "" and end.message.audio_seconds == 0
    assert isinstance(close, Close) and close.code == 1000


def test_backend_done_without_end_is_internal_error() -> None:
    session, _ = make()
    feed(session)
    assert_error(session.backend_done(1.0), ErrorCode.INTERNAL_ERROR)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (UnavailableError("connection refused", code="UNAVAILABLE"), ErrorCode.BACKEND_UNAVAILABLE),
        (CircuitOpenError("open"), ErrorCode.BACKEND_UNAVAILABLE),
        (InvalidArgumentError("bad language", code="INVALID_ARGUMENT"), ErrorCode.INVALID_CONFIG),
        (NotFoundError("no such model"), ErrorCode.INVALID_CONFIG),
        (AudioFormatError("bad audio"), ErrorCode.INVALID_CONFIG),
        (AuthenticationError("bad key"), ErrorCode.BACKEND_ERROR),
        (RuntimeError("bug"), ErrorCode.INTERNAL_ERROR),
    ],
)
def test_backend_failures_are_typed(exc: BaseException, code: ErrorCode) -> None:
    assert error_code_for(exc) is code
    session, _ = make()
    feed(session)
    error = assert_error(session.backend_failed(exc, 1.0), code)
    # The backend's text (gRPC details, addresses) is for the server log only.
    assert str(exc) not in error.message
    if code is ErrorCode.INTERNAL_ERROR:
        assert "bug" not in error.message  # internals are not leaked
    assert session.backend_failed(exc, 1.1) == []


def test_seq_has_no_gaps_across_a_whole_session() -> None:
    session, first = make()
    messages = sent(first)
    messages += sent(session.receive_text('{"type": "config", "word_timestamps": true}', 0.0))
    for i in range(3):
        feed(session)
        messages += sent(session.backend_event(Partial(text="a"), offset=i, forced=False, now=1))
        messages += sent(session.backend_event(Final(text="a b"), offset=i, forced=False, now=1))
    session.receive_text('{"type": "end"}', 2)
    messages += sent(session.backend_done(3))
    assert [m.seq for m in messages] == list(range(len(messages)))  # type: ignore[attr-defined]
    assert isinstance(messages[-1], SessionEnd) and messages[-1].transcript == "a b a b a b"


# --- recording (issue 15) ---------------------------------------------------------------


def test_recorded_session_starts_before_the_audio_and_ends_with_its_ids() -> None:
    session, _ = make({"enhance_on_end": ["true"]}, recording=RecordingPolicy.OPTIONAL)
    first = session.receive_binary(SILENCE_100MS, 0.1)
    assert [type(a) for a in first] == [StartRecording, StartBackend, ForwardAudio]
    assert first[0] == StartRecording(enhance_on_end=True)
    assert StartRecording not in map(type, session.receive_binary(SILENCE_100MS, 0.2))
    [warning] = sent(session.recording_failed(0.3))
    assert isinstance(warning, WarningMessage) and warning.code is WarningCode.RECORDING_FAILED
    assert session.recording_failed(0.4) == []  # once
    session.receive_text('{"type": "end"}', 0.5)
    assert session.backend_done(0.6) == [EndRecording()]  # session.end waits for the ids
    assert session.backend_deadline() is None
    actions = session.recording_ended(recording_id="rec_1", enhancement_job_id="job_1", now=1)
    [end] = sent(actions)
    assert isinstance(end, SessionEnd)
    assert (end.recording_id, end.enhancement_job_id) == ("rec_1", "job_1")
    assert actions[-1] == Close(CloseCode.NORMAL, "session ended")


def test_asking_to_record_where_recording_is_off_is_refused() -> None:
    session, actions = make({"record": ["true"]})
    error = assert_error(actions, ErrorCode.RECORDING_UNAVAILABLE)
    assert error.message == "record is not available: recording is off on this server"
    assert session.state is State.CLOSED
    # Where recording is always on, a session that says record=false is recorded anyway.
    always, _ = make({"record": ["false"]}, recording=RecordingPolicy.ALWAYS)
    assert always.recording.record
    assert StartRecording(enhance_on_end=False) in always.receive_binary(SILENCE_100MS, 0.1)
