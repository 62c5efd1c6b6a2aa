"""Recording (issue 15) in the sans-I/O WebSocket session: it starts before the audio and
``session.end`` carries its ids; a server without recording refuses to be asked."""

from __future__ import annotations

from asr.contract import CloseCode, ErrorCode, SessionEnd, WarningCode, WarningMessage
from asr_server.protocol import (
    Close,
    EndRecording,
    ForwardAudio,
    StartBackend,
    StartRecording,
    State,
)
from asr_server.recordings.policy import RecordingPolicy

from .helpers import SILENCE_100MS, assert_error, sent
from .ws_protocol_support import make


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
