"""Riva's results through the sans-I/O WebSocket session: partials, finals and VAD events
in session time, finalize, end, typed backend failures, and ``seq`` without gaps."""

from __future__ import annotations

import pytest

from asr.contract import (
    CloseCode,
    ErrorCode,
    SessionEnd,
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
from asr_server.limits import Limits
from asr_server.protocol import (
    Close,
    EndAudio,
    FinishUtterance,
    Send,
    Session,
    State,
    error_code_for,
)

from .helpers import SILENCE_100MS, assert_error, sent
from .ws_protocol_support import make


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
