"""Enhancement: the whole recording through offline ``Recognize`` with the best settings.

Real-time finals are decoded utterance by utterance as audio arrives; offline, the backend
sees all of it at once. Asked for: automatic punctuation, word time offsets, and on the
embedded engine (recognised by its ``-cpu-asr-offline`` model, see
``docs/embedded-server.md``) a beam of 5 (``custom_configuration`` ``beam_size:5``; its
default is 1). Recordings longer than ``piece_seconds`` go in pieces, cut at the quietest
100 ms of each piece's last tenth so that no word is split, and the pieces' times are
offset back onto the recording's clock.

Whisper (the embedded engine) decoding an utterance without the previous text as context,
as offline ``Recognize`` does, sometimes closes it with a sentence nobody said ("Thank
you.", a repeated word) whose first word it doubts: on 130 s of LJ Speech two such tails
had first-word confidences of 0.04 and 0.09 against 0.6-0.99 for spoken words. A final's
last sentence is dropped when its first word's confidence is under
``DOUBTFUL_TAIL_CONFIDENCE`` (:func:`drop_doubtful_tail`); one-sentence finals are kept.

:func:`plan_pieces`, :func:`enhancement_options`, :func:`offset_final` and
:func:`drop_doubtful_tail` are pure.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import soundfile as sf

from asr.backend import SpeechBackend
from asr.client import ModelInfo
from asr.events import Alternative, Final, Word
from asr.options import AudioEncoding, RecognitionOptions

__all__ = [
    "EMBEDDED_OFFLINE_SUFFIX",
    "enhance",
    "enhancement_options",
    "offset_final",
    "plan_pieces",
]

EMBEDDED_OFFLINE_SUFFIX = "-cpu-asr-offline"
"""The offline model name of the embedded server (``asr.embedded.catalog``)."""

EMBEDDED_BEAM_SIZE = 5

DOUBTFUL_TAIL_CONFIDENCE = 0.2

_SENTENCE_ENDS = (".", "?", "!")

_FRAME_SECONDS = 0.1


def plan_pieces(
    samples: npt.NDArray[np.int16], sample_rate: int, piece_seconds: float
) -> list[tuple[int, int]]:
    """Cut ``samples`` into ``[start, end)`` pieces of at most ``piece_seconds``.

    Each cut falls in the quietest 100 ms frame (lowest energy) of the last tenth of the
    piece, so words are not split where a pause is at hand.
    """
    total = len(samples)
    longest = int(piece_seconds * sample_rate)
    frame = max(1, int(_FRAME_SECONDS * sample_rate))
    pieces: list[tuple[int, int]] = []
    start = 0
    while total - start > longest:
        window_start = start + longest - max(longest // 10, frame)
        window = samples[window_start : start + longest].astype(np.float64)
        frames = len(window) // frame
        if frames == 0:
            cut = start + longest
        else:
            energy = (window[: frames * frame].reshape(frames, frame) ** 2).sum(axis=1)
            quietest = int(np.argmin(energy))
            cut = window_start + quietest * frame + frame // 2
        pieces.append((start, cut))
        start = cut
    if start < total or not pieces:
        pieces.append((start, total))
    return pieces


def enhancement_options(models: Sequence[ModelInfo], sample_rate: int) -> RecognitionOptions:
    """The options of an enhancement ``Recognize`` on a backend offering ``models``.

    An offline model is chosen when the backend lists one (Riva serves ``Recognize`` from
    offline models); the embedded engine's gets ``beam_size:5``.
    """
    offline = [m for m in models if m.parameters.get("type") == "offline" or "offline" in m.name]
    embedded = [m for m in offline if m.name.endswith(EMBEDDED_OFFLINE_SUFFIX)]
    candidates = embedded or offline
    chosen = candidates[0] if candidates else None
    custom = (("beam_size", str(EMBEDDED_BEAM_SIZE)),) if embedded else ()
    return RecognitionOptions(
        model=chosen.name if chosen is not None else None,
        encoding=AudioEncoding.LINEAR_PCM,
        sample_rate_hz=sample_rate,
        channels=1,
        automatic_punctuation=True,
        word_time_offsets=True,
        custom_configuration=custom,
        interim_results=False,
    )


def offset_final(final: Final, offset_ms: int) -> Final:
    """``final`` with its word times and ``audio_processed`` moved ``offset_ms`` later."""
    if not offset_ms:
        return final

    def words(items: tuple[Word, ...]) -> tuple[Word, ...]:
        return tuple(
            w.model_copy(
                update={"start_ms": w.start_ms + offset_ms, "end_ms": w.end_ms + offset_ms}
            )
            for w in items
        )

    alternatives = tuple(
        Alternative(text=a.text, confidence=a.confidence, words=words(a.words))
        for a in final.alternatives
    )
    return final.model_copy(
        update={
            "words": words(final.words),
            "alternatives": alternatives,
            "audio_processed": final.audio_processed + offset_ms / 1000,
        }
    )


def drop_doubtful_tail(final: Final, min_confidence: float = DOUBTFUL_TAIL_CONFIDENCE) -> Final:
    """``final`` without its last sentence if that sentence's first word is doubtful.

    Left as it is when it has one sentence, no word confidences, or text whose words do
    not match its word list one to one.
    """
    words = final.words
    cut = next(
        (i for i in range(len(words) - 1, 0, -1) if words[i - 1].word.endswith(_SENTENCE_ENDS)),
        None,
    )
    tokens = final.text.split()
    if cut is None or len(tokens) != len(words):
        return final
    confidence = words[cut].confidence
    if confidence is None or confidence >= min_confidence:
        return final
    text = " ".join(tokens[:cut])
    kept = words[:cut]
    alternatives = final.alternatives
    if alternatives and alternatives[0].text == final.text:
        best = alternatives[0].model_copy(update={"text": text, "words": kept})
        alternatives = (best, *alternatives[1:])
    return final.model_copy(update={"text": text, "words": kept, "alternatives": alternatives})


@runtime_checkable
class _ListsModels(Protocol):
    async def list_models(self) -> list[ModelInfo]: ...


def _read(path: Path) -> tuple[npt.NDArray[np.int16], int]:
    samples, rate = sf.read(str(path), dtype="int16", always_2d=False)
    return np.asarray(samples, dtype=np.int16), int(rate)


async def enhance(
    client: SpeechBackend,
    audio_path: Path,
    *,
    piece_seconds: float = 300.0,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Recognise the recording at ``audio_path`` and return the job's result.

    Returns:
        ``{"finals": [Final as JSON, ...], "duration_seconds", "processing_seconds",
        "pieces", "model"}``.
    """
    started = time.perf_counter()
    samples, rate = await asyncio.to_thread(_read, audio_path)
    # Riva lists its models, so an offline one is chosen; Dynamo's workers list none and
    # recognise with their default model.
    models = await client.list_models() if isinstance(client, _ListsModels) else []
    options = enhancement_options(models, rate)
    finals: list[Final] = []
    pieces = plan_pieces(samples, rate, piece_seconds)
    for start, end in pieces:
        piece = samples[start:end].tobytes()
        if not piece:
            continue
        results = await client.recognize(piece, options, timeout=timeout)
        offset_ms = round(start * 1000 / rate)
        finals += [
            offset_final(drop_doubtful_tail(f), offset_ms) for f in results if f.text.strip()
        ]
    return {
        "finals": [f.model_dump(mode="json") for f in finals],
        "duration_seconds": len(samples) / rate,
        "processing_seconds": time.perf_counter() - started,
        "pieces": len(pieces),
        "model": options.model,
    }
