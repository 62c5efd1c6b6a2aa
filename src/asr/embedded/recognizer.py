"""Per-stream recognition state: audio and VAD probabilities in, decode jobs and results out.

Sans-I/O: :class:`Recognizer` never runs a model or touches a socket. The caller feeds it
16 kHz audio with the VAD probability of every 512-sample frame that audio completes, runs
the :class:`DecodeJob` objects it returns on an engine (in any order, possibly dropping the
stale ones that :meth:`Recognizer.wanted` rejects), and hands each transcription back to
:meth:`Recognizer.complete`, which returns the results to send, finals always in
utterance order.

Positions are stream-absolute sample offsets, so word times are relative to the start of
the stream's audio whatever happened before.
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from .endpointer import (
    EndOfUtterance,
    Endpointer,
    SpeechEnded,
    SpeechResumed,
    SpeechStarted,
)
from .engine import Transcription, WordTiming
from .policy import LEAD_INTERIM_MIN_S, RecognizerConfig, stability
from .results import DecodeJob, FinalResult, InterimResult, JobKind, Result, Step
from .vad import FRAME_SAMPLES

__all__ = [
    "DecodeJob",
    "FinalResult",
    "InterimResult",
    "JobKind",
    "Recognizer",
    "RecognizerConfig",
    "Result",
    "Step",
]

SAMPLE_RATE = 16_000

Float32Array = npt.NDArray[np.float32]


class Recognizer:
    """The sans-I/O recogniser of one stream.

    Args:
        config: Cutting and decoding policy.
    """

    def __init__(self, config: RecognizerConfig | None = None) -> None:
        self.config = c = config or RecognizerConfig()
        self.endpointer = Endpointer(c.endpoint)
        ep = c.endpoint
        self._preroll = c.preroll_ms * SAMPLE_RATE // 1000
        post_ms = (
            c.postroll_ms
            if c.postroll_ms is not None
            else (ep.frames(ep.stop_history_eou) * ep.frame_ms)
        )
        self._postroll = post_ms * SAMPLE_RATE // 1000
        self._interval = max(1, c.partial_interval_ms * SAMPLE_RATE // 1000)
        self._first_interval = max(1, c.first_partial_ms * SAMPLE_RATE // 1000)
        self._retry = max(1, c.first_partial_retry_ms * SAMPLE_RATE // 1000)
        self._min_speech_frames = ep.frames(c.min_speech_ms)
        self._min_partial_frames = ep.frames(c.min_partial_speech_ms)
        self._min_new_frames = ep.frames(c.min_new_speech_ms)
        self._soft_max = int(c.soft_max_utterance_s * SAMPLE_RATE)
        self._hard_max = int(c.max_utterance_s * SAMPLE_RATE)
        # Audio kept while idle: pre-roll plus the start window the start frame can lie in.
        self._keep = self._preroll + (ep.frames(ep.start_history) + 2) * FRAME_SAMPLES

        self._buf = np.zeros(0, np.float32)
        self._buf_start = 0
        self.received = 0
        """Samples received so far."""
        self._frames = 0
        self._job_ids = 0
        self.utterance = 0
        """Id of the current or last utterance (0 before the first)."""
        self._open = False
        self._utt_start = 0
        self._speech_frames = 0
        self._start_frames = 0
        self._next_partial = 0
        self._latest_partial = -1
        self._partial_due = False
        self._partial_speech = 0  # speech frames of the utterance at its latest partial
        self._last_partial_words: list[str] = []
        self._emitted_partial = -1
        self._speech_start = 0
        # Utterances that have had an interim result: every other final of more than
        # LEAD_INTERIM_MIN_S is preceded by its own first pass as an interim (see _release).
        self._with_interim: set[int] = set()
        self._spec: DecodeJob | None = None
        self._spec_result: Transcription | None = None
        self._final_job: dict[int, int] = {}
        self._final_order: deque[int] = deque()
        self._ready: dict[int, FinalResult | None] = {}
        # Forced ends (Riva ``force_eou``): audio before ``_floor`` is in a forced final,
        # so no later utterance reaches back before it; ``_continued``: the utterance goes
        # on from a forced cut, so any speech in it is kept; ``_forced_at``: the cut
        # position each forced final reports as ``audio_processed``.
        self._floor = 0
        self._continued = False
        self._forced_at: dict[int, float] = {}
        self.finished = False

    # -- input -----------------------------------------------------------------------------

    @property
    def audio_processed(self) -> float:
        """Seconds of audio received so far (Riva ``audio_processed``)."""
        return self.received / SAMPLE_RATE

    @property
    def idle(self) -> bool:
        """No final is still being decoded."""
        return not self._final_order

    def feed(self, samples: Float32Array, probs: npt.NDArray[np.float32]) -> Step:
        """Add audio and the VAD probabilities of the frames it completed.

        Args:
            samples: The next 16 kHz mono float32 samples of the stream.
            probs: One speech probability per 512-sample frame completed by ``samples``
                (frames are counted from the start of the stream).

        Returns:
            Decode jobs to run (finals before partials) and any results already ready (a
            speculative final whose decode finished before the end was confirmed).
        """
        if self.finished:
            raise RuntimeError("feed() after finish()")
        self._buf = np.concatenate([self._buf, np.asarray(samples, np.float32)])
        self.received += len(samples)
        if (self._frames + len(probs)) * FRAME_SAMPLES > self.received:
            raise ValueError("more VAD frames than audio")
        jobs: list[DecodeJob] = []
        for prob in probs:
            jobs.extend(self._frame(float(prob)))
        if not self._open:
            self._trim(self.received - self._keep)
        if self._partial_due and self._open and self._spec is None:
            # One partial per call, over all audio scored so far: however much audio came
            # in at once, only the newest hypothesis is worth decoding.
            now = self._frames * FRAME_SAMPLES
            if self._latest_partial < 0:
                # The grid starts at the first partial (which waits for enough speech),
                # frame-aligned, so partials come every interval exactly, with no burst.
                self._next_partial = now
            while self._next_partial <= now:  # on a fixed grid: no drift
                self._next_partial += self._interval
            job = self._job(JobKind.PARTIAL, now)
            self._latest_partial = job.job_id
            self._partial_speech = self._speech_frames
            jobs.append(job)
        self._partial_due = False
        return Step(jobs, self._release())

    def finish(self) -> Step:
        """The client half-closed: flush the utterance in progress as a final."""
        if self.finished or not self._open:
            self.finished = True
            return Step([], [])
        self.finished = True
        end = min(self.endpointer.last_speech_end * FRAME_SAMPLES + self._postroll, self.received)
        if self.endpointer.last_speech_end * FRAME_SAMPLES >= self._frames * FRAME_SAMPLES:
            end = self.received  # still speaking at the end: keep the unscored tail too
        return Step(self._close(end), self._release())

    def force_end(self) -> Step:
        """End the utterance in progress after the audio so far (Riva ``force_eou``).

        Its final covers all of its audio, the unscored tail included, however little
        speech it holds; with no speech since the last final nothing is decoded. The
        stream goes on: speech that continues is a new utterance from here, and no later
        utterance reaches back before this point, so no audio is decoded twice.
        """
        if self.finished:
            raise RuntimeError("force_end() after finish()")
        if not self._open or self._speech_frames + self._start_frames == 0:
            return Step([], self._release())
        end = self.received
        self._forced_at[self.utterance] = end / SAMPLE_RATE
        jobs = self._close(end, forced=True)
        self._floor = end
        # The endpointer is still in speech (or in a pause that has not ended it yet): a
        # continuation opens here, a new utterance for the endpointer too (its stop window
        # for short utterances applies), kept at its end if it holds any speech.
        self._open_utterance(end)
        self._continued = True
        self.endpointer.restart()
        return Step(jobs, self._release())

    def _frame(self, prob: float) -> list[DecodeJob]:
        self._frames += 1
        now = self._frames * FRAME_SAMPLES
        jobs: list[DecodeJob] = []
        for event in self.endpointer.push(prob):
            if isinstance(event, SpeechStarted):
                self._open_utterance(max(0, event.frame * FRAME_SAMPLES - self._preroll))
                self._speech_start = max(self._utt_start, event.frame * FRAME_SAMPLES)
                # The start window's frames, from the first speech frame up to this one.
                self._start_frames = self._frames - 1 - event.frame
            elif isinstance(event, EndOfUtterance):
                if self.config.speculative and self._enough_speech():
                    end = min(event.end_frame * FRAME_SAMPLES + self._postroll, now)
                    self._spec = self._job(JobKind.SPECULATIVE, end)
                    self._spec_result = None
                    jobs.append(self._spec)
            elif isinstance(event, SpeechResumed):
                self._spec = self._spec_result = None
            elif isinstance(event, SpeechEnded):
                jobs.extend(self._close(min(event.end_frame * FRAME_SAMPLES + self._postroll, now)))
        if not self._open:
            return jobs
        if prob >= self.config.endpoint.neg_threshold:
            self._speech_frames += 1
        length = now - self._utt_start
        if length >= self._hard_max or (
            length >= self._soft_max and prob < self.config.endpoint.neg_threshold
        ):
            # Whisper sees at most 30 s: cut here and go on with a new utterance.
            jobs.extend(self._close(now))
            self._open_utterance(now)
            self._speech_frames = self._min_speech_frames  # it is mid-speech already
            self._start_frames = self._min_partial_frames
            self.endpointer.restart()
            return jobs
        if (
            self.config.interim_results
            and now >= self._next_partial
            and self._speech_frames + self._start_frames >= self._min_partial_frames
            and self._enough_speech()
            # Not over a pause: the hypothesis would not change, and the decode would
            # compete with the speculative final that a pause is about to start.
            and self.endpointer.last_speech_end == self._frames
        ):
            if (
                self._latest_partial >= 0
                and self._speech_frames - self._partial_speech < self._min_new_frames
            ):
                # Too little new speech since the previous partial: skip this slot of the
                # grid rather than decode the same words again a few frames later.
                while self._next_partial <= now:
                    self._next_partial += self._interval
            else:
                self._partial_due = True
        return jobs

    def _enough_speech(self) -> bool:
        # A continuation's first frames are the end of a word cut by a forced end.
        return self._speech_frames >= (1 if self._continued else self._min_speech_frames)

    def _open_utterance(self, start: int) -> None:
        self.utterance += 1
        self._open = True
        self._continued = False
        self._utt_start = max(start, self._buf_start, self._floor)
        self._speech_start = self._utt_start
        self._speech_frames = 0
        self._start_frames = 0
        self._next_partial = self._utt_start + min(self._first_interval, self._interval)
        self._latest_partial = -1
        self._partial_due = False
        self._partial_speech = 0
        self._last_partial_words = []
        self._spec = self._spec_result = None

    def _close(self, end: int, *, forced: bool = False) -> list[DecodeJob]:
        self._open = False
        utt = self.utterance
        spec, spec_result = self._spec, self._spec_result
        self._spec = self._spec_result = None
        if not forced and not self._enough_speech():
            return []
        self._final_order.append(utt)
        if spec is not None and spec.end_sample == end:
            self._final_job[utt] = spec.job_id
            if spec_result is not None:
                self._ready[utt] = self._final(spec, spec_result)
            return []
        job = self._job(JobKind.FINAL, end)
        self._final_job[utt] = job.job_id
        return [job]

    def _job(self, kind: JobKind, end: int) -> DecodeJob:
        self._job_ids += 1
        start = self._utt_start
        audio = self._buf[start - self._buf_start : end - self._buf_start].copy()
        return DecodeJob(self._job_ids, self.utterance, kind, audio, start, end, self._speech_start)

    def _trim(self, keep_from: int) -> None:
        cut = keep_from - self._buf_start
        if cut > SAMPLE_RATE:  # trim in steps of a second or more, not every chunk
            self._buf = self._buf[cut:].copy()
            self._buf_start = keep_from

    # -- results ---------------------------------------------------------------------------

    def wanted(self, job: DecodeJob) -> bool:
        """Whether ``job`` is still worth running (ask just before running it).

        A partial is stale once a newer partial exists or its utterance has ended or is
        being finalised; a speculative final is stale once speech resumed.
        """
        if job.kind is JobKind.PARTIAL:
            return (
                job.utterance == self.utterance
                and self._open
                and self._spec is None
                and job.job_id == self._latest_partial
            )
        if job.kind is JobKind.SPECULATIVE:
            return self._spec is job or self._final_job.get(job.utterance) == job.job_id
        return True

    def complete(self, job: DecodeJob, result: Transcription) -> list[Result]:
        """Take a job's transcription; return the results now ready to send, in order."""
        if job.kind is JobKind.PARTIAL:
            current = job.utterance == self.utterance and self._open
            if (
                not current
                or job.job_id <= self._emitted_partial
                or not result.text
                # Nothing of a later utterance before the final of an earlier one.
                or self._final_order
            ):
                if current and job.utterance not in self._with_interim:
                    # The utterance still has no interim (an empty first draft, or one
                    # held back behind an earlier final): try again soon, not a whole
                    # interval later.
                    self._next_partial = min(self._next_partial, job.end_sample + self._retry)
                return []
            self._emitted_partial = job.job_id
            words = result.text.split()
            agree = 0
            for old, new in zip(self._last_partial_words, words, strict=False):
                if old != new:
                    break
                agree += 1
            self._last_partial_words = words
            self._with_interim.add(job.utterance)
            return [
                InterimResult(
                    job.utterance, result.text, stability(agree, len(words)), self.audio_processed
                )
            ]
        if self._final_job.get(job.utterance) == job.job_id:
            self._ready[job.utterance] = self._final(job, result)
        elif self._spec is job:
            self._spec_result = result  # the end has not come yet; kept until it does
            if self.config.interim_results and result.text and not self._final_order:
                # Riva's first pass at stop_history_eou: "a partial transcript with
                # stability of 1" before the end of the utterance is confirmed.
                self._with_interim.add(job.utterance)
                return [InterimResult(job.utterance, result.text, 1.0, self.audio_processed)]
        return self._release()

    def _final(self, job: DecodeJob, result: Transcription) -> FinalResult:
        offset = job.start_sample / SAMPLE_RATE
        end = job.end_sample / SAMPLE_RATE
        # Whisper pins the first word to the start of the audio it was given, which holds
        # the pre-roll: no word starts before the speech the VAD found.
        speech = job.speech_sample / SAMPLE_RATE
        words = []
        for w in result.words:
            w_end = min(end, offset + w.end)
            w_start = min(w_end, max(speech, offset + w.start))
            words.append(WordTiming(w.word, w_start, w_end, w.probability))
        return FinalResult(job.utterance, replace(result, words=tuple(words)), offset, end, 0.0)

    def _release(self) -> list[Result]:
        out: list[Result] = []
        while self._final_order and self._final_order[0] in self._ready:
            utt = self._final_order.popleft()
            final = self._ready.pop(utt)
            self._final_job.pop(utt, None)
            processed = self._forced_at.pop(utt, self.audio_processed)
            interim = utt in self._with_interim
            self._with_interim.discard(utt)
            if final is None or not final.transcription.text:
                continue
            if (
                self.config.interim_results
                and not interim
                and final.end - final.start > LEAD_INTERIM_MIN_S
            ):
                # Audio that came faster than it could be decoded partially (a file sent
                # at once, a client catching up): the first pass comes as an interim of
                # stability 1 right before its final, as Riva's two-pass end does.
                out.append(InterimResult(utt, final.transcription.text, 1.0, processed))
            out.append(replace(final, audio_processed=processed))
        return out
