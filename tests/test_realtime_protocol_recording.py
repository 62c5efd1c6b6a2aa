"""Recording (issue 15) in the sans-I/O realtime session: the recording starts before the
audio and its ids are told after the last result; a server without recording refuses
to be asked for one."""

from __future__ import annotations

import pytest

from asr.events import Final
from asr_server.limits import Limits
from asr_server.protocol import Close, EndAudio, EndRecording, StartBackend, StartRecording, State
from asr_server.realtime import RealtimeSession, server_event_adapter
from asr_server.recordings.policy import RecordingPolicy

from .realtime_protocol_support import SID, TONE, append, error, frame, make, only


def test_recorded_session_tells_its_ids_after_the_last_result() -> None:
    session = make(recording=RecordingPolicy.OPTIONAL, enhance_on_end=True)
    assert session.recording.record and session.recording.enhance_on_end
    first = session.receive_text(append(TONE), 0)
    assert [type(a) for a in first] == [StartRecording, StartBackend]
    assert first[0] == StartRecording(enhance_on_end=True)
    assert session.receive_text(append(TONE), 0) == []  # once
    session.receive_text(frame("input_audio_buffer.done"), 1)
    session.backend_event(Final(text="kept"), offset=0, forced=True, now=2)
    end = session.backend_done(2)
    assert only(end)["is_last_result"] is True  # every final out before the recording closes
    assert end[-1] == EndRecording()
    assert session.state is State.DRAINING
    assert session.backend_deadline() is None  # Riva owes nothing more
    assert session.recording_failed(2.5) == []  # no warning event in this API
    closed = session.recording_ended(recording_id="rec_1", enhancement_job_id="job_1", now=3)
    assert only(closed) == {
        "event_id": "event_t_2",
        "type": "transcription_session.recorded",
        "recording_id": "rec_1",
        "enhancement_job_id": "job_1",
    }
    server_event_adapter.validate_python(only(closed))
    assert closed[-1] == Close(1000, "session ended")
    assert session.receive_text(append(TONE), 4) == []  # closed


def test_recording_that_kept_nothing_says_so_and_a_shutdown_closes_going_away() -> None:
    session = make(recording=RecordingPolicy.ALWAYS, record=False)  # cannot opt out
    session.receive_text(append(TONE), 0)
    assert session.shutdown(1, timeout=5)[-1] == EndAudio()
    assert session.backend_done(2)[-1] == EndRecording()
    closed = session.recording_ended(recording_id=None, enhancement_job_id=None, now=2)
    assert only(closed)["recording_id"] is None
    assert closed[-1] == Close(1001, "server shutting down")


def test_unrecorded_sessions_start_and_end_no_recording() -> None:
    for session in (make(recording=RecordingPolicy.OPTIONAL), make(record=False)):
        assert not session.recording.record
        actions = session.receive_text(append(TONE), 0)
        assert [type(a) for a in actions] == [StartBackend]
        session.receive_text(frame("input_audio_buffer.done"), 1)
        assert session.backend_done(2)[-1] == Close(1000, "session ended")
    # Done before any audio: nothing was recorded, nothing to end.
    empty = make(recording=RecordingPolicy.ALWAYS)
    assert empty.receive_text(frame("input_audio_buffer.done"), 1)[-1] == Close(
        1000, "session ended"
    )


@pytest.mark.parametrize(
    ("record", "enhance_on_end", "option"),
    [(True, None, "record"), (None, True, "enhance_on_end")],
)
def test_asking_to_record_where_recording_is_off_is_refused(
    record: bool | None, enhance_on_end: bool | None, option: str
) -> None:
    session = RealtimeSession(
        session_id=SID, limits=Limits(), now=0.0, record=record, enhance_on_end=enhance_on_end
    )
    actions = session.open()
    assert error(actions) == {
        "type": "invalid_request_error",
        "code": "recording_unavailable",
        "message": f"{option} is not available: recording is off on this server",
        "param": None,
        "event_id": None,
        "retryable": False,
    }
    assert actions[-1] == Close(4002, "recording_unavailable")
    assert session.state is State.CLOSED
