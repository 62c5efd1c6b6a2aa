"""Transcripts of the sans-I/O realtime session: one item per utterance, events in order
with ids that have no gaps, word times counted from the session's start."""

from __future__ import annotations

from asr.events import Final, Partial, Progress, Word

from .realtime_protocol_support import TONE, append, frame, make, only, sent


def test_items_are_stable_per_utterance_and_in_order() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    script: list[Partial | Final | Progress] = [
        Partial(text="a"),
        Partial(text="a"),  # repeated hypothesis: no event
        Progress(audio_processed=0.5),
        Partial(text="a b"),
        Final(text="a b c"),
        Final(text=""),  # silence: no item
        Partial(text="d"),
        Final(text="d e"),
    ]
    events = [
        e for r in script for e in sent(session.backend_event(r, offset=0, forced=False, now=1))
    ]
    assert [
        (e["type"].rsplit(".", 1)[1], e["item_id"], e.get("delta", e.get("transcript")))
        for e in events
    ] == [
        ("delta", "item_t_0", "a"),
        ("delta", "item_t_0", "a b"),
        ("completed", "item_t_0", "a b c"),
        ("delta", "item_t_1", "d"),
        ("completed", "item_t_1", "d e"),
    ]
    assert [e["event_id"] for e in events] == [f"event_t_{n}" for n in range(1, 6)]


def test_after_done_a_held_completed_goes_before_the_next_delta() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    session.receive_text(frame("input_audio_buffer.done"), 0)
    assert session.backend_event(Final(text="one"), offset=0, forced=True, now=1) == []
    following = sent(session.backend_event(Partial(text="two"), offset=0, forced=True, now=1))
    assert [(e["type"].rsplit(".", 1)[1], e["item_id"]) for e in following] == [
        ("completed", "item_t_0"),
        ("delta", "item_t_1"),
    ]
    assert following[0]["is_last_result"] is False
    session.backend_event(Final(text="two"), offset=0, forced=True, now=1)
    assert only(session.backend_done(2))["is_last_result"] is True


def test_word_times_count_from_the_session_start() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    final = Final(text="x", words=(Word(word="x", start_ms=10, end_ms=20),))
    [event] = sent(session.backend_event(final, offset=2.5, forced=False, now=1))
    assert event["words_info"]["words"] == [
        {"word": "x", "start_time": 2510, "end_time": 2520, "confidence": 0.0, "speaker_tag": 0}
    ]
