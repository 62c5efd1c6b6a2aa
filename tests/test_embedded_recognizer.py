"""The sans-I/O recognizer on synthetic audio and VAD probabilities: no model, no sockets."""

from __future__ import annotations

import numpy as np
import pytest

from asr.embedded.endpointer import EndpointParams
from asr.embedded.engine import Transcription, WordTiming
from asr.embedded.recognizer import (
    DecodeJob,
    FinalResult,
    InterimResult,
    JobKind,
    Recognizer,
    RecognizerConfig,
    Result,
)

FRAME = 512
RATE = 16_000


def audio_for(frames: int, start_frame: int) -> np.ndarray:
    """Samples whose value is their stream-absolute index, so slices can be checked."""
    return np.arange(start_frame * FRAME, (start_frame + frames) * FRAME, dtype=np.float32)


class Driver:
    """Feeds a recognizer frame by frame, as a stream with 32 ms chunks would."""

    def __init__(self, config: RecognizerConfig | None = None) -> None:
        self.rec = Recognizer(config)
        self.frame = 0
        self.jobs: list[DecodeJob] = []
        self.results: list[Result] = []

    def feed(self, probs: list[float], chunk: int = 1) -> list[DecodeJob]:
        new: list[DecodeJob] = []
        for i in range(0, len(probs), chunk):
            part = probs[i : i + chunk]
            step = self.rec.feed(audio_for(len(part), self.frame), np.asarray(part, np.float32))
            self.frame += len(part)
            new += step.jobs
            self.results += step.results
        self.jobs += new
        return new

    def finish(self) -> list[DecodeJob]:
        step = self.rec.finish()
        self.jobs += step.jobs
        self.results += step.results
        return step.jobs

    def complete(
        self, job: DecodeJob, text: str, words: tuple[WordTiming, ...] = ()
    ) -> list[Result]:
        out = self.rec.complete(job, Transcription(text, 0.9, words))
        self.results += out
        return out


def test_partials_every_480_ms_then_first_pass_interim_and_final_reused_at_the_end() -> None:
    d = Driver(RecognizerConfig(partial_interval_ms=480))
    d.feed([0.0] * 10 + [0.9] * 156)  # 0.32 s silence, 5 s speech
    partials = [j for j in d.jobs if j.kind is JobKind.PARTIAL]
    # The utterance starts 300 ms before its first speech frame (pre-roll).
    assert all(j.start_sample == 10 * FRAME - 4800 for j in partials)
    # The first partial once 0.3 s of speech follows the pre-roll, then one every 480 ms
    # of audio (15 frames exactly), each covering all audio so far.
    lengths = [(j.end_sample - j.start_sample) / RATE for j in partials]
    assert len(partials) == 10 and lengths[0] == pytest.approx(0.62)
    assert np.diff(lengths) == pytest.approx([0.48] * 9)
    for j in partials:
        assert np.array_equal(j.audio, np.arange(j.start_sample, j.end_sample, dtype=np.float32))
    assert [d.rec.wanted(j) for j in partials] == [False] * 9 + [True]
    (interim,) = d.complete(partials[-1], "Hello")
    assert isinstance(interim, InterimResult) and 0 < interim.stability < 1

    spec = d.feed([0.0] * 8)  # 250 ms of silence: first-pass end of utterance
    assert [j.kind for j in spec] == [JobKind.SPECULATIVE]
    assert d.rec.wanted(spec[0]) and not d.rec.wanted(partials[-1])
    assert spec[0].end_sample == 166 * FRAME + 4096  # last word + the eou window
    # Not final yet, the pause goes on: Riva's first pass, an interim of stability 1.
    (first_pass,) = d.complete(spec[0], "Hello world.")
    assert isinstance(first_pass, InterimResult)
    assert (first_pass.text, first_pass.stability) == ("Hello world.", 1.0)
    assert d.feed([0.0] * 30) == []  # the real end reuses the speculation, no new decode
    finals = [r for r in d.results if isinstance(r, FinalResult)]
    assert len(finals) == 1 and finals[0].transcription.text == "Hello world."
    assert finals[0].start == pytest.approx((10 * FRAME - 4800) / RATE)
    assert d.rec.idle


def test_audio_faster_than_decoding_still_gets_an_interim_before_each_final() -> None:
    # A whole file in one chunk: every partial is stale before it could run, and the
    # first pass is the final's own decode; it still comes as an interim first.
    d = Driver(RecognizerConfig(endpoint=EndpointParams(short_stop_history=0)))
    d.feed([0.0] * 10 + [0.9] * 100 + [0.0] * 40 + [0.9] * 10 + [0.0] * 60, chunk=220)
    finals = [j for j in d.jobs if j.kind is not JobKind.PARTIAL]
    assert [j.utterance for j in finals] == [1, 2]
    out = d.complete(finals[0], "A long sentence.") + d.complete(finals[1], "Hi.")
    # The second utterance (0.88 s of audio with pre- and post-roll) is too short to need one.
    assert [(type(r).__name__, r.utterance) for r in out] == [
        ("InterimResult", 1),
        ("FinalResult", 1),
        ("FinalResult", 2),
    ]
    assert isinstance(out[0], InterimResult) and out[0].stability == 1.0


def test_interim_stability_is_never_the_unset_value() -> None:
    d = Driver()
    d.feed([0.0] * 10 + [0.9] * 60)
    first, second = [j for j in d.jobs if j.kind is JobKind.PARTIAL][:2]
    (a,) = d.complete(first, "Hello")
    (b,) = d.complete(second, "Hello there")
    assert isinstance(a, InterimResult) and isinstance(b, InterimResult)
    # Nothing to agree with yet, then one word of two kept: 0 would mean "not set".
    assert (a.stability, b.stability) == (0.01, 0.5)


def test_speech_resuming_discards_the_speculative_final() -> None:
    d = Driver(RecognizerConfig(interim_results=False))
    d.feed([0.0] * 5 + [0.9] * 140 + [0.0] * 9)
    (spec,) = d.jobs
    assert spec.kind is JobKind.SPECULATIVE
    d.feed([0.9] * 40)  # speech resumes: the speculation is stale
    assert not d.rec.wanted(spec)
    assert d.complete(spec, "stale text") == []
    (again,) = d.feed([0.0] * 60)  # a new speculation at the next pause becomes the final
    assert again.kind is JobKind.SPECULATIVE and again.end_sample > spec.end_sample
    assert again.start_sample == spec.start_sample and d.rec.wanted(again)
    (result,) = d.complete(again, "the whole utterance")
    assert isinstance(result, FinalResult) and result.transcription.text == "the whole utterance"


def test_finals_are_released_in_utterance_order() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    speech = [0.9] * 150
    gap = [0.0] * 70
    d.feed([0.0] * 5 + speech + gap + speech + gap)
    first, second = d.jobs
    assert (first.utterance, second.utterance) == (1, 2)
    assert first.end_sample <= second.start_sample
    assert d.complete(second, "two") == []  # waits for the first
    out = d.complete(first, "one")
    assert [r.transcription.text for r in out if isinstance(r, FinalResult)] == ["one", "two"]
    assert d.rec.idle


def test_word_times_are_relative_to_the_stream() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed([0.0] * 100 + [0.9] * 150 + [0.0] * 60)
    (job,) = d.jobs
    (result,) = d.complete(
        job, "hi there", (WordTiming("hi", 0.3, 0.5, 0.9), WordTiming("there", 0.6, 0.9, 0.8))
    )
    assert isinstance(result, FinalResult)
    offset = job.start_sample / RATE  # 3.2 s of silence minus 0.3 s of pre-roll
    assert offset == pytest.approx(2.9)
    times = [t for w in result.transcription.words for t in (w.start, w.end)]
    assert times == pytest.approx([offset + 0.3, offset + 0.5, offset + 0.6, offset + 0.9])
    assert result.audio_processed == pytest.approx(310 * FRAME / RATE)


def test_no_word_starts_before_the_speech_the_vad_found() -> None:
    # Whisper pins the first word to the start of its audio, the pre-roll's silence.
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed([0.0] * 100 + [0.9] * 150 + [0.0] * 60)
    (job,) = d.jobs
    words = (WordTiming("hi", 0.0, 0.5, 0.9), WordTiming("there", 0.6, 0.9, 0.8))
    (result,) = d.complete(job, "hi there", words)
    assert isinstance(result, FinalResult)
    first, second = result.transcription.words
    assert first.start == pytest.approx(100 * FRAME / RATE)  # 3.2 s, not 2.9 s
    assert (first.end, second.start) == pytest.approx((2.9 + 0.5, 2.9 + 0.6))


def test_long_speech_is_cut_before_whisper_window_and_continues() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed([0.9] * 1100, chunk=10)  # 35 s of speech without a pause
    (cut,) = d.jobs
    assert cut.kind is JobKind.FINAL and cut.utterance == 1
    assert cut.end_sample - cut.start_sample <= 28 * RATE
    d.finish()
    rest = d.jobs[1]
    assert rest.utterance == 2 and rest.start_sample == cut.end_sample  # no gap, no overlap
    assert rest.end_sample == 1100 * FRAME


def test_long_speech_is_cut_at_a_pause_after_the_soft_limit() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed(([0.9] * 100 + [0.1] * 3) * 9, chunk=7)
    first = d.jobs[0]
    assert first.start_sample == 0
    # Pauses fall on frames 100 + 103 k; the first after 20 s (625 frames) is frame 718.
    assert first.end_sample == 719 * FRAME


def test_half_close_flushes_speech_in_progress() -> None:
    d = Driver(RecognizerConfig(interim_results=False))
    d.feed([0.0] * 20 + [0.9] * 60)
    assert d.jobs == []
    tail = np.zeros(100, np.float32)  # less than a frame, never scored by the VAD
    step = d.rec.feed(tail, np.zeros(0, np.float32))
    assert step.jobs == []
    (final,) = d.finish()
    assert final.kind is JobKind.FINAL and final.end_sample == 80 * FRAME + 100
    assert not d.rec.idle
    d.complete(final, "flushed")
    assert d.rec.idle and d.rec.finish().jobs == []


def test_silence_clicks_and_noise_produce_no_work() -> None:
    d = Driver()
    d.feed([0.01] * 200 + [0.9] * 5 + [0.0] * 100 + [0.3] * 200)
    d.finish()
    assert d.jobs == [] and d.results == [] and d.rec.idle


def test_stale_and_out_of_order_partials_are_not_sent() -> None:
    d = Driver(RecognizerConfig(partial_interval_ms=500, speculative=False))
    d.feed([0.9] * 40)
    p1, p2 = [j for j in d.jobs if j.kind is JobKind.PARTIAL]
    (r2,) = d.complete(p2, "hello there")
    assert isinstance(r2, InterimResult) and r2.stability == 0.01
    assert d.complete(p1, "hello") == []  # older than what was already sent
    d.feed([0.9] * 16)
    p3 = d.jobs[-1]
    (r3,) = d.complete(p3, "hello there friend")
    assert isinstance(r3, InterimResult)
    assert r3.stability == pytest.approx(2 / 3)  # two of three words agree with the last one
    assert d.complete(p3, "") == []


def test_a_big_chunk_yields_at_most_one_partial() -> None:
    d = Driver(RecognizerConfig(speculative=False))
    jobs = d.feed([0.9] * 400, chunk=400)  # 12.8 s at once, as an unpaced client sends
    assert [j.kind for j in jobs] == [JobKind.PARTIAL]
    assert jobs[0].end_sample == 400 * FRAME


def test_no_partial_over_a_pause_and_a_first_syllable() -> None:
    """JFK's "ask not [pause] what": pre-roll over the pause plus the onset of "what" made
    Whisper say "Thank you."; a partial needs 0.3 s of VAD speech in its audio."""
    d = Driver()
    d.feed([0.0] * 40)  # 1.28 s pause
    onset = d.feed([0.9] * 8)  # 0.26 s of speech: the utterance is open, no partial yet
    assert d.rec.utterance == 1 and onset == []
    later = d.feed([0.9] * 40)
    partials = [j for j in later if j.kind is JobKind.PARTIAL]
    assert partials
    for job in partials:
        speech = job.end_sample - 40 * FRAME  # the speech frames inside its audio
        assert speech >= 0.3 * RATE, (job.start_sample, job.end_sample)


def test_a_noise_burst_that_opens_an_utterance_gets_no_partial() -> None:
    """Speech-like frames for 0.26 s then a long pause: no partial over the burst or the
    pause (the final alone decides, and the min_speech rule drops what is too short)."""
    d = Driver()
    d.feed([0.0] * 20 + [0.9] * 8 + [0.0] * 100)
    assert [j for j in d.jobs if j.kind is JobKind.PARTIAL] == []
    d.feed([0.0] * 100)
    d.finish()
    assert all(j.kind is not JobKind.PARTIAL for j in d.jobs)


# --- forced ends of utterance (Riva runtime_config force_eou) ---------------------------


def test_forced_end_mid_speech_finalises_all_audio_and_continues_from_the_cut() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed([0.0] * 50 + [0.9] * 60)
    cut = d.frame * FRAME
    step = d.rec.force_end()
    (forced,) = step.jobs
    assert forced.kind is JobKind.FINAL and forced.end_sample == cut
    assert forced.start_sample == (50 * FRAME - 4800)  # speech start minus the pre-roll
    # All its audio, exactly: the samples are their own stream offsets.
    assert forced.audio[0] == forced.start_sample and forced.audio[-1] == cut - 1
    # Speech goes on for 5 frames (160 ms, less than min_speech_ms): the end of the word
    # cut in two is still decoded, from the cut on, not a sample earlier.
    (tail,) = d.feed([0.9] * 5 + [0.0] * 60)
    assert tail.start_sample == cut and tail.utterance == forced.utterance + 1
    [final] = d.complete(forced, "and so my fellow ameri")
    assert isinstance(final, FinalResult)
    assert final.audio_processed == pytest.approx(cut / RATE)  # reports the cut
    assert d.complete(tail, "cans") and d.rec.idle


def test_forced_end_without_speech_since_the_last_final_decodes_nothing() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    (job,) = d.feed([0.0] * 20 + [0.9] * 40 + [0.0] * 60)
    d.complete(job, "hello")
    assert d.rec.force_end().jobs == []
    # A cut in a pause, right after a forced final: the continuation holds no speech.
    d.feed([0.9] * 40)
    assert len(d.rec.force_end().jobs) == 1
    d.feed([0.0] * 10)
    assert d.rec.force_end().jobs == []
    assert d.feed([0.0] * 60) == []  # and its natural end drops it undecoded


def test_forced_end_before_speech_is_confirmed_keeps_the_onset() -> None:
    d = Driver(RecognizerConfig(interim_results=False, speculative=False))
    d.feed([0.0] * 50 + [0.9] * 2)  # speech began, the start window is not full yet
    forced_at = d.frame * FRAME
    assert d.rec.force_end().jobs == []
    (job,) = d.feed([0.9] * 40 + [0.0] * 60)
    assert job.start_sample < 50 * FRAME < forced_at  # onset and pre-roll kept


def test_no_partial_of_a_later_utterance_before_the_final_of_an_earlier_one() -> None:
    d = Driver(RecognizerConfig(speculative=False))
    d.feed([0.0] * 10 + [0.9] * 40)
    (forced,) = d.rec.force_end().jobs
    partials = [j for j in d.feed([0.9] * 40) if j.kind is JobKind.PARTIAL]
    assert partials
    assert d.complete(partials[-1], "ask not") == []  # withheld: the forced final is owed
    # The forced utterance had no interim: its first pass comes as one, then its final.
    out = d.complete(forced, "and so")
    assert [(type(r), r.utterance) for r in out] == [(InterimResult, 1), (FinalResult, 1)]
    later = [j for j in d.feed([0.9] * 40) if j.kind is JobKind.PARTIAL]
    assert [type(r) for r in d.complete(later[-1], "ask not what")] == [InterimResult]


def test_a_partial_with_too_little_new_speech_skips_its_slot() -> None:
    def partial_ends(config: RecognizerConfig) -> list[DecodeJob]:
        d = Driver(config)
        d.feed([0.0] * 10 + [0.9] * 40)  # partials end at frames 20, 35, 50
        # Two pauses shorter than the first-pass end of utterance around 3 speech frames:
        # the slot due at frame 65 falls in the second pause, and speech comes back at 67
        # with only 4 speech frames since the partial at 50.
        d.feed([0.2] * 7 + [0.9] * 3 + [0.2] * 7 + [0.9] * 30)
        assert all(j.kind is JobKind.PARTIAL for j in d.jobs)
        return d.jobs

    skipping = partial_ends(RecognizerConfig(partial_interval_ms=480))
    assert [j.end_sample // FRAME for j in skipping] == [20, 35, 50, 80, 95]
    # Without the rule that slot's partial runs 1 frame after the speech came back.
    every = partial_ends(RecognizerConfig(partial_interval_ms=480, min_new_speech_ms=0))
    assert [j.end_sample // FRAME for j in every] == [20, 35, 50, 68, 80, 95]


def test_an_empty_first_draft_is_tried_again_sooner_than_the_interval() -> None:
    config = RecognizerConfig(partial_interval_ms=960, speculative=False)
    d = Driver(config)
    d.feed([0.0] * 10 + [0.9] * 10)  # the first partial: 0.3 s pre-roll + 0.32 s speech
    (first,) = d.jobs
    assert first.end_sample // FRAME == 20
    assert d.complete(first, "") == []  # Whisper heard nothing yet
    d.feed([0.9] * 20)
    # Tried again 240 ms of audio later (7.5 frames: at frame 28), not at frame 50.
    retry = d.jobs[1]
    assert retry.kind is JobKind.PARTIAL and retry.end_sample // FRAME == 28
    (interim,) = d.complete(retry, "Hello")
    assert isinstance(interim, InterimResult)
    d.feed([0.9] * 40)
    # With an interim out, the next come on the interval's grid again (30 frames).
    ends = [j.end_sample // FRAME for j in d.jobs[2:]]
    assert ends and all(b - a == 30 for a, b in zip(ends, ends[1:], strict=False))
    assert ends[0] - 28 >= 30
