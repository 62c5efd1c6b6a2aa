"""Measure conditioning on the previous final: WER of utterances cut short, with and without.

Usage: python scripts/bench_previous_text.py [--words 4] [--clips 10] [--speech DIR]

An aggressive endpointer cuts speech into short pieces ("And so my fellow Americans" |
"ask not what your country" ...). This splits jfk.wav and librispeech_mini clips every
``--words`` words, at the middle of the gap between two words (times from a whole-clip
decode), decodes each piece as its own utterance and joins the pieces' texts per clip.
Prompts compared, each with ``punctuate=True`` (the server's usual case) and without:

* none: no previous text (today's server);
* previous: the session's previous finals via ``previous_text``.

Prints the WER over all clips (``asr.wer``, normalised) and the mean decode time per piece.
``punctuate=True`` with ``previous_text`` is the same prompt as without: the previous text
replaces the fixed punctuation prompt. Measured on 2 cores (jfk + 9 librispeech_mini clips,
60 pieces of 4 words; whole clips 2.2%): none 20.6%, previous 19.7%, punctuation prompt
alone 37.7%; both prompts one after the other (dropped) 174%, Whisper repeating them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from asr.audio import read_audio
from asr.embedded import WhisperEngine
from asr.evaluation.corpus import speech_fixtures
from asr.wer import word_error_rate

RATE = 16_000


def load(speech: Path, n: int) -> list[tuple[np.ndarray, str]]:
    """jfk.wav and the first ``n`` librispeech_mini clips with their references."""
    out = []
    for folder, limit in (("jfk", 1), ("librispeech_mini", n)):
        rows = (speech / folder / "refs.jsonl").read_text().splitlines()[:limit]
        for row in map(json.loads, rows):
            out.append((read_audio(speech / folder / row["audio"])[0], row["text"]))
    return out


def pieces(engine: WhisperEngine, audio: np.ndarray, every: int) -> list[np.ndarray]:
    """Cut ``audio`` after every ``every``-th word, halfway between two words."""
    words = engine.transcribe(audio, word_timestamps=True).words
    cuts = [0]
    for i in range(every, len(words), every):
        cuts.append(int((words[i - 1].end + words[i].start) / 2 * RATE))
    cuts.append(audio.size)
    return [audio[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b - a > RATE // 10]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=4, help="words per piece")
    parser.add_argument("--clips", type=int, default=10, help="librispeech_mini clips")
    parser.add_argument("--speech", type=Path, help="folder of speech sets (ASR_SPEECH_FIXTURES)")
    args = parser.parse_args()
    try:
        speech = speech_fixtures(args.speech)
    except FileNotFoundError as exc:
        parser.error(str(exc))

    engine = WhisperEngine()
    clips = load(speech, args.clips)
    split = [pieces(engine, audio, args.words) for audio, _ in clips]
    refs = [ref for _, ref in clips]
    whole = [engine.transcribe(audio, punctuate=True).text for audio, _ in clips]
    count = sum(map(len, split))
    print(f"{len(clips)} clips cut into {count} pieces of about {args.words} words")
    print(f"  whole clips, one utterance each: WER {word_error_rate(refs, whole):.2%}")
    for punctuate in (False, True):
        for conditioned in (False, True):
            texts, seconds = [], 0.0
            for parts in split:
                finals: list[str] = []
                for part in parts:
                    previous = " ".join(finals) if conditioned and finals else None
                    t = time.perf_counter()
                    result = engine.transcribe(part, punctuate=punctuate, previous_text=previous)
                    seconds += time.perf_counter() - t
                    if result.text:
                        finals.append(result.text)
                texts.append(" ".join(finals))
            label = f"punctuate={punctuate!s:5} previous_text={'yes' if conditioned else 'no '}"
            print(
                f"  {label}: WER {word_error_rate(refs, texts):.2%}, "
                f"{seconds / count:.2f} s per piece"
            )


if __name__ == "__main__":
    main()
