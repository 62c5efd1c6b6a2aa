"""The sans-I/O realtime session's audio buffer: commit, clear, ``force_eou`` cuts, and
done with the last result it owes."""

from __future__ import annotations

from asr.events import Final
from asr_server.protocol import Close, EndAudio, FinishUtterance, ForwardAudio
from asr_server.realtime import Send

from .realtime_protocol_support import TONE, append, error, frame, make, only, sent


def test_clear_drops_uncommitted_audio_and_its_cut() -> None:
    session = make()
    session.receive_text(append(TONE, force_eou=True), 1)
    assert only(session.receive_text(frame("input_audio_buffer.clear"), 1)) == {
        "event_id": "event_t_1",
        "type": "input_audio_buffer.cleared",
    }
    commit = session.receive_text(frame("input_audio_buffer.commit"), 1)
    assert [a for a in commit if not isinstance(a, Send)] == []


def test_force_eou_cuts_after_its_chunk_only_when_there_is_audio() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    session.receive_text(append(TONE, force_eou=True), 1)
    session.receive_text(append(TONE), 1)
    commit = session.receive_text(frame("input_audio_buffer.commit"), 1)
    assert commit[:3] == [ForwardAudio(TONE + TONE), FinishUtterance(), ForwardAudio(TONE)]
    session.receive_text(append(b"", force_eou=True), 2)  # cuts after the last chunk
    session.receive_text(append(b"", force_eou=True), 2)  # no audio since: no cut
    again = session.receive_text(frame("input_audio_buffer.commit"), 2)
    assert [a for a in again if not isinstance(a, Send)] == [FinishUtterance()]


def test_done_commits_the_rest_and_ends_the_audio() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    assert session.receive_text(frame("input_audio_buffer.done"), 1) == [
        ForwardAudio(TONE),
        EndAudio(),
    ]
    late = error(session.receive_text(append(TONE), 1.1))
    assert late["code"] == "after_done"
    assert (
        late["message"] == "'input_audio_buffer.append' after input_audio_buffer.done was ignored"
    )


def test_done_without_audio_ends_with_an_empty_last_result() -> None:
    session = make()
    actions = session.receive_text(frame("input_audio_buffer.done"), 1)
    assert sent(actions) == [
        {
            "event_id": "event_t_1",
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_t_0",
            "content_index": 0,
            "transcript": "",
            "is_last_result": True,
            "words_info": {"words": []},
        }
    ]
    assert actions[-1] == Close(1000, "session ended")


def test_last_result_repeats_the_last_completed_when_none_follows_done() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    session.backend_event(Final(text="one"), offset=0, forced=False, now=1)
    session.receive_text(frame("input_audio_buffer.done"), 2)
    session.backend_event(Final(text=""), offset=0, forced=True, now=2)  # silence
    last = only(session.backend_done(3))
    assert (last["item_id"], last["transcript"], last["is_last_result"]) == (
        "item_t_0",
        "one",
        True,
    )
