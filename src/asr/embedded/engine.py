"""The speech-to-text engine behind the embedded server: a small Protocol and Whisper.

An :class:`Engine` turns one utterance of 16 kHz mono float32 audio (at most 30 s) into a
:class:`Transcription`. It is called from worker threads, so implementations must allow
concurrent calls. :class:`WhisperEngine` runs Whisper tiny.en with faster-whisper on CPU;
another engine only needs to implement :meth:`Engine.transcribe`.

``alternatives=1`` without negative boosts runs faster-whisper's own ``transcribe``, as
before; an n-best or a negative boost decodes with :mod:`asr.embedded.nbest` instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from .model import load_whisper
from .nbest import decode_nbest, prompt_text
from .window import encoder_window, short_window

__all__ = ["Engine", "Hypothesis", "Transcription", "WhisperEngine", "WordTiming"]

Float32Array = npt.NDArray[np.float32]

# Whisper follows the style of the text before the audio. Decoded alone, a sentence
# fragment cut at a pause comes back bare ("And so my fellow Americans ask not"), so later
# utterances of a session looked unpunctuated; after this prompt it is punctuated ("ask
# not."), and whole sentences keep their commas. Used when no previous final is given
# (``previous_text`` replaces it). Not a greeting ("Hello, welcome."): after one,
# Whisper closed JFK's last sentence with "Thank you." over the post-roll's silence.
_PUNCTUATED_PROMPT = "Okay, so. Here it is, in full sentences."

# A draft's style prompt, without the lead-in: over the first 300 ms of speech Whisper
# often answered the full prompt's "Okay" (8 of the 41 first drafts of librispeech_mini
# and ljspeech32 began with it, against 1 with this prompt, and as many began the
# reference, 19 against 20). Finals keep the full prompt, which their WER was measured with.
_DRAFT_PROMPT = "Here it is, in full sentences."

# A draft's new tokens: 10 per second of audio and 10 more, twice what fast speech needs.
# A draft of a few hundred ms can loop ("this is this is ...") until Whisper's 448-token
# limit, which cost 0.3 s of a worker for a partial that would be replaced anyway. At most
# 220, so that a 224-token prompt still fits the limit.
_DRAFT_TOKENS_PER_S = 10
_DRAFT_MAX_TOKENS = 220


@dataclass(frozen=True, slots=True)
class WordTiming:
    """One word with times in seconds from the start of the audio passed to the engine."""

    word: str
    start: float
    end: float
    probability: float


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """One alternative transcript (a Riva ``SpeechRecognitionAlternative``).

    Attributes:
        text: Cased, punctuated text.
        confidence: In (0, 1], as :attr:`Transcription.confidence`.
    """

    text: str
    confidence: float


@dataclass(frozen=True, slots=True)
class Transcription:
    """What an engine heard in one utterance.

    Attributes:
        text: Cased, punctuated text; empty when nothing was recognised.
        confidence: In (0, 1]; for Whisper ``exp`` of the mean token log-probability.
        words: Per-word timings of ``text``, only when they were asked for.
        alternatives: Distinct hypotheses, best first, at most as many as asked for; the
            first is ``text`` with ``confidence``. Empty when nothing was recognised.
    """

    text: str
    confidence: float = 0.0
    words: tuple[WordTiming, ...] = field(default_factory=tuple)
    alternatives: tuple[Hypothesis, ...] = field(default_factory=tuple)


@runtime_checkable
class Engine(Protocol):
    """A speech recogniser for single utterances, safe to call from several threads."""

    @property
    def name(self) -> str:
        """Short engine name, e.g. ``"whisper-tiny.en"``; model names derive from it."""
        ...

    def transcribe(
        self,
        audio: Float32Array,
        *,
        word_timestamps: bool = False,
        boosts: Sequence[tuple[str, float]] = (),
        draft: bool = False,
        punctuate: bool = False,
        alternatives: int = 1,
        previous_text: str | None = None,
        beam_size: int | None = None,
    ) -> Transcription:
        """Recognise ``audio`` (16 kHz mono float32, at most 30 s).

        Args:
            audio: The utterance.
            word_timestamps: Also return per-word timings (of the top hypothesis).
            boosts: ``(phrase, score)`` pairs (Riva ``SpeechContext.phrases`` and
                ``boost``): a positive score favours the phrase, a negative one disfavours
                it, in nats per occurrence; 0 has no effect.
            draft: An interim hypothesis that will be replaced: trade accuracy for speed.
            punctuate: The text will be shown punctuated (Riva
                ``enable_automatic_punctuation``): make sure it is.
            alternatives: Hypotheses wanted (Riva ``max_alternatives``); fewer may come.
            previous_text: The session's previous final transcript, as context (its last
                50 words become Whisper's prompt, instead of the punctuation prompt).
            beam_size: Beam width of this decode when not a draft; ``None``: the engine's.
        """
        ...


class WhisperEngine:
    """Whisper tiny.en (CTranslate2 int8) via faster-whisper, on CPU.

    Args:
        cpu_threads: Threads per decode; 0 means half the CPU cores.
        num_workers: Decodes that can run in parallel (the server's decode pool size).
        beam_size: Beam width for finals; drafts always use greedy decoding.
        no_speech_threshold: Segments whose no-speech probability is above this *and* whose
            mean log-probability is below ``log_prob_threshold`` are dropped, as Whisper's
            own hallucination guard does on silence and noise.
        log_prob_threshold: See ``no_speech_threshold``.
    """

    def __init__(
        self,
        *,
        cpu_threads: int = 0,
        num_workers: int = 2,
        beam_size: int = 1,
        no_speech_threshold: float = 0.6,
        log_prob_threshold: float = -1.0,
    ) -> None:
        self._model: Any = load_whisper(cpu_threads, num_workers)
        self.num_workers = num_workers
        self.beam_size = beam_size
        self.no_speech_threshold = no_speech_threshold
        self.log_prob_threshold = log_prob_threshold

    @property
    def name(self) -> str:
        return "whisper-tiny.en"

    def transcribe(
        self,
        audio: Float32Array,
        *,
        word_timestamps: bool = False,
        boosts: Sequence[tuple[str, float]] = (),
        draft: bool = False,
        punctuate: bool = False,
        alternatives: int = 1,
        previous_text: str | None = None,
        beam_size: int | None = None,
    ) -> Transcription:
        boosts = [(p, float(b)) for p, b in boosts if p.strip()]
        beam = beam_size or self.beam_size
        favoured = [p for p, b in boosts if b > 0]
        # The previous final replaces the fixed prompt rather than following it: after
        # both, Whisper repeated the prompt into 4-word pieces (WER 174% against 20% with
        # the previous text alone, scripts/bench_previous_text.py).
        punctuated = _DRAFT_PROMPT if draft else _PUNCTUATED_PROMPT
        style = punctuated if punctuate and not previous_text else None
        nbest = alternatives > 1 or any(b < 0 for _, b in boosts)

        def decode(prompt: str | None) -> Transcription:
            if nbest:
                return self._nbest(
                    audio, max(1, alternatives), prompt, boosts, word_timestamps, beam
                )
            return self._single(
                audio, prompt, draft=draft, word_timestamps=word_timestamps, beam=beam
            )

        result = decode(prompt_text(favoured, style, previous_text))
        if not result.text and previous_text:
            # A short, misheard previous final can make Whisper emit nothing at all for
            # speech (JFK's "country can do for you ..." after "like your car"): the
            # context must never cost an utterance, so it is decoded again without it.
            fallback = punctuated if punctuate else None
            result = decode(prompt_text(favoured, fallback, None))
        return result

    def _nbest(
        self,
        audio: Float32Array,
        n: int,
        prompt: str | None,
        boosts: Sequence[tuple[str, float]],
        word_timestamps: bool,
        beam: int,
    ) -> Transcription:
        # No temperature fallback here: the beam is wide, and a fallback's samples would
        # not be an n-best.
        candidates, words = decode_nbest(
            self._model,
            audio,
            n=n,
            beam_size=beam,
            prompt=prompt,
            boosts=boosts,
            word_timestamps=word_timestamps,
            no_speech_threshold=self.no_speech_threshold,
            log_prob_threshold=self.log_prob_threshold,
        )
        if not candidates:
            return Transcription("")
        top = candidates[0]
        timings = tuple(
            WordTiming(
                w["word"].strip(), float(w["start"]), float(w["end"]), float(w["probability"])
            )
            for w in words
            if w["word"].strip()
        )
        hypotheses = tuple(Hypothesis(c.text, c.confidence) for c in candidates)
        return Transcription(top.text, top.confidence, timings, hypotheses)

    def _single(
        self,
        audio: Float32Array,
        prompt: str | None,
        *,
        draft: bool,
        word_timestamps: bool,
        beam: int,
    ) -> Transcription:
        # Drafts encode a shorter window (asr.embedded.window); finals the full 30 s: on a
        # 15 s or 20 s one, streamed JFK's "ask not" became "asked not".
        window = short_window(audio.size) if draft else None
        with encoder_window(window):
            segments, _ = self._model.transcribe(
                audio,
                language="en",
                beam_size=1 if draft else beam,
                # Greedy without temperature fallback for drafts: they are replaced within a
                # second, so a rare bad one is cheaper than a decode that takes 5x longer.
                temperature=0.0 if draft else (0.0, 0.2, 0.4, 0.6),
                condition_on_previous_text=False,
                vad_filter=False,  # the server's own Silero VAD has already cut the utterance
                without_timestamps=draft,
                word_timestamps=word_timestamps and not draft,
                initial_prompt=prompt,
                max_new_tokens=_draft_tokens(audio.size) if draft else None,
                no_speech_threshold=self.no_speech_threshold,
                log_prob_threshold=self.log_prob_threshold,
            )
            # faster-whisper encodes lazily: the segments are decoded inside the window.
            decoded = list(segments)
        texts: list[str] = []
        words: list[WordTiming] = []
        logprob_sum = 0.0
        token_count = 0
        for index, segment in enumerate(decoded):
            if segment.no_speech_prob > self.no_speech_threshold and (
                segment.avg_logprob < self.log_prob_threshold
                # A short segment after speech that Whisper itself doubts is speech: the
                # pause after the last word, filled with "Thank you." (JFK's tail after the
                # session's finals as prompt: no-speech 0.75, mean log-probability -0.98).
                or (index > 0 and segment.end - segment.start < _TAIL_SECONDS)
            ):
                continue  # silence or noise that Whisper tends to fill with "Thank you."
            text = segment.text.strip()
            if not text:
                continue
            texts.append(text)
            n = max(1, len(segment.tokens))
            logprob_sum += segment.avg_logprob * n
            token_count += n
            for w in segment.words or ():
                words.append(
                    WordTiming(w.word.strip(), float(w.start), float(w.end), float(w.probability))
                )
        if not texts:
            return Transcription("")
        text = " ".join(texts)
        confidence = min(1.0, math.exp(logprob_sum / token_count) if token_count else 0.0)
        return Transcription(text, confidence, tuple(words), (Hypothesis(text, confidence),))


_TAIL_SECONDS = 1.0
"""A segment after the first that lasts less than this and that Whisper rates as likely no
speech is dropped whatever its log-probability."""


def _draft_tokens(samples: int) -> int:
    return min(_DRAFT_MAX_TOKENS, _DRAFT_TOKENS_PER_S * (samples // 16_000 + 1))
