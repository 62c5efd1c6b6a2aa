"""The session protocol's forced endpoints and stall detector, sans I/O with a fake clock.

``finalize`` becomes a :class:`FinishUtterance` on the open Riva stream (a forced end of
utterance), unless it comes too soon after the previous one; Riva is failed as stalled
only after ``final_timeout_seconds`` without any progress while it owes an answer.
"""

from __future__ import annotations

from asr.contract import (
    ErrorCode,
    TranscriptFinal,
    WarningCode,
    WarningMessage,
)
from asr.events import Final, Partial, Progress
from asr_server.limits import Limits
from asr_server.protocol import (
    Action,
    EndAudio,
    FinishUtterance,
    ForwardAudio,
    Send,
    Session,
    StartBackend,
)

from .helpers import SILENCE_100MS, assert_error, sent

FINALIZE = '{"type": "finalize"}'


class Clock:
    """A session fed 100 ms of audio per 100 ms of fake time."""

    def __init__(self, **limits: float) -> None:
        self.now = 0.0
        self.session = Session(session_id="s1", limits=Limits(**limits), now=0.0)
        self.session.open()

    def audio(self, seconds: float) -> list[Action]:
        actions: list[Action] = []
        for _ in range(round(seconds * 10)):
            self.now = round(self.now + 0.1, 3)
            actions += self.session.receive_binary(SILENCE_100MS, self.now)
        return actions

    def finalize(self) -> list[Action]:
        return list(self.session.receive_text(FINALIZE, self.now))

    def event(self, event: Partial | Final | Progress, *, forced: bool = False) -> list[Action]:
        return list(self.session.backend_event(event, offset=0.0, forced=forced, now=self.now))

    def wait(self, seconds: float) -> list[Action]:
        self.now = round(self.now + seconds, 3)
        return list(self.session.tick(self.now))


def test_finalize_is_a_forced_end_on_the_open_stream() -> None:
    c = Clock()
    actions = c.audio(4.0)
    assert sum(isinstance(a, StartBackend) for a in actions) == 1
    assert c.finalize() == [FinishUtterance()]
    # The same stream goes on: no new StartBackend, audio is forwarded as before.
    assert all(isinstance(a, ForwardAudio) for a in c.audio(0.5))


def test_too_frequent_finalize_is_not_applied_and_warned_once() -> None:
    c = Clock()  # min_finalize_audio_seconds = 4 by default
    applied, warnings = 0, []
    for _ in range(44):  # every 0.25 s for 11 s
        c.audio(0.25)
        for action in c.finalize():
            if isinstance(action, FinishUtterance):
                applied += 1
            else:
                warnings += sent([action])
    # At 4 s and 8 s of audio: one forced end per 4 s of audio, no more.
    assert applied == 2
    assert c.wait(0.4) == []  # and none of those merged into the flowing audio later
    [warning] = warnings
    assert isinstance(warning, WarningMessage)
    assert warning.code is WarningCode.FINALIZE_TOO_FREQUENT
    assert "4 s" in warning.message


def test_too_early_finalize_is_applied_once_the_audio_stops() -> None:
    """Push-to-talk: a short command, released, is finalised half a second later."""
    c = Clock()
    c.audio(1.0)
    [warning] = sent(c.finalize())
    assert isinstance(warning, WarningMessage)
    assert warning.code is WarningCode.FINALIZE_TOO_FREQUENT
    assert c.session.deadline() == c.now + 0.5
    assert c.wait(0.4) == []
    assert c.wait(0.1) == [FinishUtterance()]
    # The next command: too early again, but the audio resumes in time, so it merges.
    c.audio(1.0)
    assert c.finalize() == []  # warned once per session
    c.audio(0.3)
    assert c.wait(1.0) == []


def test_min_finalize_audio_zero_applies_every_finalize() -> None:
    c = Clock(min_finalize_audio_seconds=0)
    for _ in range(5):
        c.audio(0.2)
        assert c.finalize() == [FinishUtterance()]


def test_forced_final_is_not_speech_final_and_keeps_session_times() -> None:
    c = Clock()
    c.audio(4.0)
    assert c.finalize() == [FinishUtterance()]
    c.audio(1.0)
    [*_, final] = sent(c.event(Final(text="and so", audio_processed=4.0), forced=True))
    assert isinstance(final, TranscriptFinal) and final.is_speech_final is False
    assert final.audio_processed == 4.0
    [*_, later] = sent(c.event(Final(text="ask not", audio_processed=5.0)))
    assert isinstance(later, TranscriptFinal) and later.is_speech_final is True
    assert later.start >= final.end


# --- slow versus stalled ---------------------------------------------------------------


def test_a_slow_backend_that_keeps_answering_is_waited_for_after_end() -> None:
    c = Clock()  # final_timeout_seconds = 10
    c.audio(2.0)
    assert EndAudio() in c.session.receive_text('{"type": "end"}', c.now)
    # 30 s of decoding under load: a response without transcript every 6 s keeps it alive.
    for _ in range(5):
        assert c.wait(6.0) == []
        c.event(Progress(audio_processed=2.0))
    assert c.session.backend_deadline() == c.now + 10.0
    c.event(Final(text="late but there", audio_processed=2.0), forced=True)
    [end, _close] = c.session.backend_done(c.now)
    assert isinstance(end, Send)
    assert "late but there" in end.message.model_dump_json()


def test_a_backend_silent_for_final_timeout_after_end_is_stalled() -> None:
    c = Clock()
    c.audio(2.0)
    c.session.receive_text('{"type": "end"}', c.now)
    c.wait(6.0)
    c.event(Partial(text="still", audio_processed=2.0))  # progress restarts the wait...
    assert c.wait(9.9) == []
    error = assert_error(c.wait(0.1), ErrorCode.BACKEND_UNAVAILABLE)  # ...silence ends it
    assert "no progress for 10 s" in error.message and "stalled" in error.message


def test_finalize_is_owed_until_riva_shows_it_processed_the_cut() -> None:
    c = Clock()
    c.audio(4.0)
    assert c.finalize() == [FinishUtterance()]
    assert c.session.backend_deadline() == c.now + 10.0
    c.audio(1.0)  # audio flowing is not progress of Riva
    c.event(Partial(text="and so", audio_processed=3.5))  # progress, not yet at the cut
    assert c.session.backend_deadline() == c.now + 10.0
    c.event(Progress(audio_processed=4.0))  # the cut acknowledged: nothing owed any more
    assert c.session.backend_deadline() is None
    assert c.wait(20.0) == []  # Riva silent while audio flows is no stall


def test_finalize_never_acknowledged_is_stalled() -> None:
    c = Clock()
    c.audio(4.0)
    assert c.finalize() == [FinishUtterance()]
    assert c.wait(9.9) == []
    assert_error(c.wait(0.1), ErrorCode.BACKEND_UNAVAILABLE)
