"""The endpointer state machine on synthetic per-frame speech probabilities."""

from __future__ import annotations

from dataclasses import replace

from asr.embedded.endpointer import (
    EndOfUtterance,
    Endpointer,
    EndpointEvent,
    EndpointParams,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)


def run(
    probs: list[float], params: EndpointParams | None = None
) -> list[tuple[int, EndpointEvent]]:
    ep = Endpointer(params)
    return [(i, e) for i, p in enumerate(probs) for e in ep.push(p)]


def frames(ms: int) -> int:
    return ms // 32


def test_long_utterance_start_eou_end_in_order() -> None:
    # 0.5 s silence, 5 s speech, 2 s silence.
    probs = [0.02] * 16 + [0.9] * 156 + [0.05] * 62
    events = run(probs)
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, EndOfUtterance, SpeechEnded]
    (i_start, start), (i_eou, eou), (i_end, end) = events
    assert isinstance(start, SpeechStarted) and start.frame == 16
    # 200 ms window at 0.5: the fourth speech frame of seven starts the utterance.
    assert i_start == 16 + 3
    assert isinstance(eou, EndOfUtterance) and eou.end_frame == 172
    assert i_eou == 172 + 8 - 1  # 250 ms -> 8 frames, all non-speech
    assert isinstance(end, SpeechEnded) and end.end_frame == 172
    # 500 ms -> 16 frames, 0.9 of them non-speech: 15 after the last word.
    assert i_end == 172 + 15 - 1
    assert i_end * 32 - 172 * 32 < 600  # the end is known well under a second later


def test_short_utterance_waits_longer_unless_the_client_set_stop_history() -> None:
    probs = [0.0] * 10 + [0.9] * 60 + [0.0] * 80  # a 1.9 s phrase
    (_, _), (_, _), (i_end, end) = run(probs)
    assert isinstance(end, SpeechEnded)
    assert (i_end + 1 - 70) * 32 >= 1300  # the short-utterance window (1.5 s at 0.9)
    explicit = replace(EndpointParams(), short_stop_history=0)
    events = run(probs, explicit)
    assert [type(e) for _, e in events] == [SpeechStarted, EndOfUtterance, SpeechEnded]
    assert (events[-1][0] + 1 - 70) * 32 <= 500


def test_speech_resuming_after_eou_withdraws_the_speculation() -> None:
    probs = [0.0] * 5 + [0.9] * 150 + [0.1] * 10 + [0.9] * 30 + [0.0] * 40
    events = run(probs)
    kinds = [type(e) for _, e in events]
    assert kinds == [SpeechStarted, EndOfUtterance, SpeechResumed, EndOfUtterance, SpeechEnded]
    assert isinstance(events[2][1], SpeechResumed) and events[2][1].frame == 165
    last_eou = events[3][1]
    assert isinstance(last_eou, EndOfUtterance) and last_eou.end_frame == 195


def test_hysteresis_keeps_soft_word_tails_inside_the_utterance() -> None:
    # 0.4 is below the start threshold (0.5) but above the in-speech one (0.35).
    probs = [0.9] * 150 + [0.4] * 40 + [0.0] * 40
    events = run(probs)
    end = events[-1][1]
    assert isinstance(end, SpeechEnded) and end.end_frame == 190


def test_blips_and_noise_never_start_an_utterance() -> None:
    probs = ([0.0] * 20 + [0.8, 0.8, 0.8] + [0.0] * 20) * 5 + [0.45] * 100
    assert run(probs) == []


def test_zero_fields_mean_defaults_and_start_threshold_is_a_fraction() -> None:
    defaults = EndpointParams()
    assert defaults.merged(start_history=0, stop_threshold=0.0) == defaults
    strict = defaults.merged(start_history=320, start_threshold=1.0)  # 10 frames, all speech
    probs = [0.0] * 5 + [0.9] * 9 + [0.0] * 5 + [0.9] * 10 + [0.0] * 60
    events = run(probs, strict)
    assert isinstance(events[0][1], SpeechStarted)
    assert events[0][0] == 5 + 9 + 5 + 10 - 1
    assert run(probs) and run(probs)[0][0] == 5 + 3  # the default starts on the first burst


def test_eou_window_not_shorter_than_stop_window_is_ignored() -> None:
    params = EndpointParams(stop_history=300, stop_history_eou=600, short_stop_history=0)
    events = run([0.9] * 50 + [0.0] * 30, params)
    assert [type(e) for _, e in events] == [SpeechStarted, SpeechEnded]


def test_restart_begins_a_new_utterance_in_speech() -> None:
    ep = Endpointer()
    for _ in range(40):
        ep.push(0.9)
    assert ep.in_speech
    ep.restart()
    events = [e for _ in range(60) for e in ep.push(0.0)]
    assert [type(e) for e in events] == [EndOfUtterance, SpeechEnded]
