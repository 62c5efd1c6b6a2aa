"""The sans-I/O realtime session's ends that are not the client's: a failed or stalled
backend, the idle timeout, the backlog Riva has not processed, a server shutdown."""

from __future__ import annotations

import pytest

from asr.errors import InvalidArgumentError, UnavailableError
from asr.events import Final, Progress
from asr_server.limits import Limits
from asr_server.protocol import Close, EndAudio, ForwardAudio

from .realtime_protocol_support import TONE, append, error, frame, make, only


def test_backend_failure_is_an_error_and_a_close() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    actions = session.backend_failed(UnavailableError("ipv4:10.0.0.5:50051 refused"), 1)
    assert only(actions) == {
        "event_id": "event_t_1",
        "type": "error",
        "error": {
            "type": "server_error",
            "code": "backend_unavailable",
            "message": "the speech backend is unavailable; try again",
            "param": None,
            "event_id": None,
            "retryable": True,
        },
    }
    assert actions[-1] == Close(4007, "backend_unavailable")
    assert session.receive_text(append(TONE), 2) == []
    refused = make().backend_failed(InvalidArgumentError("bad language"), 1)
    assert error(refused)["code"] == "invalid_config"
    assert refused[-1] == Close(4002, "invalid_config")


def test_idle_timeout_and_stalled_backend() -> None:
    session = make(limits=Limits(idle_timeout_seconds=5, final_timeout_seconds=3))
    assert session.deadline() == 5
    assert session.tick(4.9) == []
    idle = session.tick(5.0)
    assert error(idle)["code"] == "idle_timeout"
    assert idle[-1] == Close(4009, "idle_timeout")

    session = make(limits=Limits(final_timeout_seconds=3))
    session.receive_text(append(TONE), 1)
    session.receive_text(frame("input_audio_buffer.done"), 1)
    assert session.backend_deadline() == 4
    session.backend_event(Progress(audio_processed=0.05), offset=0, forced=True, now=2)
    assert session.backend_deadline() == 5  # progress restarts the wait
    stalled = session.tick(5)
    assert error(stalled)["code"] == "backend_unavailable"


def test_backlog_is_audio_riva_has_not_processed() -> None:
    session = make()
    session.receive_text(append(TONE * 10), 0)
    session.receive_text(frame("input_audio_buffer.commit"), 0)
    assert session.backlog_seconds == pytest.approx(1.0)
    session.backend_event(Progress(audio_processed=0.75), offset=0, forced=False, now=1)
    assert session.backlog_seconds == pytest.approx(0.25)


def test_shutdown_drains_and_closes_going_away() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    assert session.shutdown(1, timeout=5) == [ForwardAudio(TONE), EndAudio()]
    session.backend_event(Final(text="end"), offset=0, forced=True, now=2)
    actions = session.backend_done(2)
    assert only(actions)["transcript"] == "end"
    assert actions[-1] == Close(1001, "server shutting down")
