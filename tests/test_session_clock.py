"""The streaming sessions' shared timers without I/O: plain calls, a fake clock."""

from __future__ import annotations

import pytest

from asr.contract import ErrorCode
from asr_server.limits import Limits
from asr_server.session_clock import Expiry, SessionClock

LIMITS = Limits(max_session_seconds=100, idle_timeout_seconds=10, final_timeout_seconds=3)


def test_idle_counts_only_when_the_caller_says_and_activity_restarts_it() -> None:
    clock = SessionClock(LIMITS, now=0.0)
    assert clock.deadline(idle_counts=True) == 10
    assert clock.deadline(idle_counts=False) == 100
    assert clock.expired(9.9, idle_counts=True) is None
    assert clock.expired(10, idle_counts=True) is Expiry.IDLE
    assert clock.expired(10, idle_counts=False) is None  # draining, or the client is held
    clock.activity(8)
    assert clock.deadline(idle_counts=True) == 18
    assert clock.expired(17, idle_counts=True) is None


def test_session_length_counts_from_the_start_or_the_admission() -> None:
    clock = SessionClock(LIMITS, now=0.0)
    clock.restart(5)  # waited 5 s in the admission queue
    assert clock.deadline(idle_counts=False) == 105
    for now in range(0, 105, 5):
        clock.activity(now)
    assert clock.expired(104.9, idle_counts=True) is None
    assert clock.expired(105, idle_counts=True) is Expiry.SESSION_TOO_LONG


def test_shutdown_deadline_comes_first() -> None:
    clock = SessionClock(LIMITS, now=0.0)
    clock.shutdown(2, timeout=5)
    assert clock.deadline(idle_counts=True) == 7
    assert clock.expired(6.9, idle_counts=False) is None
    clock.stall.owe(0)  # a stall is due at 3, the shutdown at 7, idle at 10
    assert clock.expired(200, idle_counts=True) is Expiry.SHUTDOWN


def test_stall_is_the_backend_deadline_and_progress_restarts_it() -> None:
    clock = SessionClock(LIMITS, now=0.0)
    assert clock.backend_deadline() is None
    clock.stall.owe_cut(1.5, now=4)  # a forced end at 1.5 s of audio
    assert clock.backend_deadline() == 7
    clock.stall.response(1.0, now=6, owed=False)  # not there yet: the wait restarts
    assert clock.backend_deadline() == 9
    assert clock.expired(9, idle_counts=False) is Expiry.STALLED
    assert clock.expired(200, idle_counts=True) is Expiry.STALLED  # before the others
    clock.stall.response(1.5, now=8, owed=False)  # processed the cut: nothing owed
    assert clock.backend_deadline() is None
    clock.stall.progress(8, owed=True)  # after the end of the audio an answer is owed
    assert clock.backend_deadline() == 11


@pytest.mark.parametrize(
    ("expiry", "code", "message"),
    [
        (
            Expiry.STALLED,
            ErrorCode.BACKEND_UNAVAILABLE,
            "speech recognition backend: no progress for 3 s while an answer was owed (stalled)",
        ),
        (Expiry.SESSION_TOO_LONG, ErrorCode.SESSION_TOO_LONG, "session reached its limit of 100 s"),
        (Expiry.IDLE, ErrorCode.IDLE_TIMEOUT, "no message for 10 s"),
    ],
)
def test_each_expiry_has_one_error(expiry: Expiry, code: ErrorCode, message: str) -> None:
    assert SessionClock(LIMITS, now=0.0).error(expiry) == (code, message)


def test_a_shutdown_ends_without_an_error() -> None:
    with pytest.raises(ValueError, match="without an error"):
        SessionClock(LIMITS, now=0.0).error(Expiry.SHUTDOWN)
