"""Riva finals rendered as OpenAI's transcription responses, one function per format.

=================  ===========================  =========================================
format             media type                   body
=================  ===========================  =========================================
``json``           ``application/json``         ``{"text": ..., "usage": ...}``
``text``           ``text/plain``               the text and a newline, as OpenAI ends it
``verbose_json``   ``application/json``         ``task``, ``language``, ``duration``,
                                                ``text``, ``segments[]`` and/or
                                                ``words[]``, ``usage``
``srt``            ``application/x-subrip``     numbered cues, ``00:00:01,000`` times
``vtt``            ``text/vtt``                 ``WEBVTT`` header, ``00:00:01.000`` times
=================  ===========================  =========================================

The ``openai`` SDK parses json as ``Transcription``, verbose_json as
``TranscriptionVerbose`` and the other three as the body's text whatever its media type.

One verbose_json segment is one Riva final (one utterance). What a segment carries that
Riva does not give is filled so that clients that filter Whisper's failed segments keep
ours: ``tokens`` is ``[]`` (Riva returns no token ids), ``temperature`` 0 (decoding is
deterministic), ``avg_logprob`` 0 and ``no_speech_prob`` 0 (Riva's confidences are not
log-probabilities; Whisper's clients drop a segment with ``avg_logprob < -1`` and
``no_speech_prob > 0.6``); ``compression_ratio`` is computed as Whisper does (text bytes
over their zlib size); ``seek`` is the segment's start in Whisper's 10 ms frames. Segment
text starts with a space, as Whisper's does, so that joining them gives the text.

Subtitle cues are cut from each final's word times: at most ``max_chars`` characters and
``max_seconds`` long, cut after a sentence or clause end when one is in the cue's second
half.
"""

from __future__ import annotations

import json
import math
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from asr.events import Final, Word

from .languages import language_name
from .request import ResponseFormat, TranscriptionRequest

__all__ = [
    "Cue",
    "MEDIA_TYPES",
    "RenderedResponse",
    "cues",
    "json_body",
    "render",
    "srt_body",
    "text_body",
    "transcript_text",
    "verbose_json_body",
    "vtt_body",
]

MEDIA_TYPES: dict[ResponseFormat, str] = {
    ResponseFormat.JSON: "application/json",
    ResponseFormat.TEXT: "text/plain; charset=utf-8",
    ResponseFormat.VERBOSE_JSON: "application/json",
    ResponseFormat.SRT: "application/x-subrip; charset=utf-8",
    ResponseFormat.VTT: "text/vtt; charset=utf-8",
}
"""``Content-Type`` of each format."""

MAX_CUE_CHARS = 84
"""Two subtitle lines of 42 characters (the common broadcast limit)."""

MAX_CUE_SECONDS = 7.0
"""The longest a cue stays on screen."""

_CLAUSE_ENDS = (".", "?", "!", ",", ";", ":")


@dataclass(frozen=True, slots=True)
class RenderedResponse:
    """A response body and its ``Content-Type``."""

    body: str
    media_type: str


@dataclass(frozen=True, slots=True)
class Cue:
    """One subtitle cue; times in seconds from the start of the upload."""

    start: float
    end: float
    text: str


def _texts(finals: Sequence[Final]) -> Iterator[str]:
    return (f.text.strip() for f in finals if f.text.strip())


def transcript_text(finals: Sequence[Final]) -> str:
    """The utterances' texts joined with spaces."""
    return " ".join(_texts(finals))


def _usage(duration: float) -> dict[str, Any]:
    # OpenAI reports whole seconds of input for duration-billed models.
    return {"type": "duration", "seconds": math.ceil(duration)}


def json_body(finals: Sequence[Final], duration: float) -> str:
    """``response_format=json``."""
    return json.dumps({"text": transcript_text(finals), "usage": _usage(duration)})


def text_body(finals: Sequence[Final]) -> str:
    """``response_format=text``: the text, newline-terminated as OpenAI sends it."""
    return transcript_text(finals) + "\n"


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def _span(final: Final, previous_end: float, duration: float) -> tuple[float, float]:
    """A final's start and end; without word times, from the previous end to where
    Riva had processed."""
    if final.words:
        return _seconds(final.words[0].start_ms), _seconds(final.words[-1].end_ms)
    end = min(duration, final.audio_processed) if final.audio_processed else duration
    return previous_end, max(previous_end, round(end, 3))


def _compression_ratio(text: str) -> float:
    data = text.encode()
    return round(len(data) / len(zlib.compress(data)), 6) if data else 0.0


def verbose_json_body(
    finals: Sequence[Final],
    duration: float,
    *,
    language_code: str,
    segments: bool = True,
    words: bool = False,
) -> str:
    """``response_format=verbose_json``; ``segments``/``words``: which lists to include."""
    body: dict[str, Any] = {
        "task": "transcribe",
        "language": language_name(language_code),
        "duration": round(duration, 3),
        "text": transcript_text(finals),
    }
    spoken = [f for f in finals if f.text.strip()]
    if segments:
        items, end = [], 0.0
        for index, final in enumerate(spoken):
            start, end = _span(final, end, duration)
            text = final.text.strip()
            items.append(
                {
                    "id": index,
                    "seek": round(start * 100),
                    "start": start,
                    "end": end,
                    "text": " " + text,
                    "tokens": [],
                    "temperature": 0.0,
                    "avg_logprob": 0.0,
                    "compression_ratio": _compression_ratio(text),
                    "no_speech_prob": 0.0,
                }
            )
        body["segments"] = items
    if words:
        body["words"] = [
            {"word": w.word, "start": _seconds(w.start_ms), "end": _seconds(w.end_ms)}
            for final in spoken
            for w in final.words
        ]
    body["usage"] = _usage(duration)
    return json.dumps(body)


def _display_words(final: Final) -> list[tuple[str, Word]]:
    """Each word's time with its text as the final's text spells it (punctuated), when the
    two tokenise alike; else the words as Riva timed them."""
    tokens = final.text.split()
    if len(tokens) == len(final.words):
        return list(zip(tokens, final.words, strict=True))
    return [(w.word, w) for w in final.words]


def _split(
    words: list[tuple[str, Word]], max_chars: int, max_seconds: float
) -> Iterator[list[tuple[str, Word]]]:
    current: list[tuple[str, Word]] = []
    for item in words:
        if current:
            chars = sum(len(t) + 1 for t, _ in current) + len(item[0])
            seconds = (item[1].end_ms - current[0][1].start_ms) / 1000
            if chars > max_chars or seconds > max_seconds:
                # Prefer a cut after a clause end in the cue's second half.
                cut = len(current)
                for i in range(len(current) - 1, len(current) // 2 - 1, -1):
                    if current[i][0].endswith(_CLAUSE_ENDS):
                        cut = i + 1
                        break
                yield current[:cut]
                current = current[cut:]
        current.append(item)
    if current:
        yield current


def cues(
    finals: Sequence[Final],
    duration: float,
    *,
    max_chars: int = MAX_CUE_CHARS,
    max_seconds: float = MAX_CUE_SECONDS,
) -> list[Cue]:
    """Subtitle cues for ``finals``, in order, none longer than the limits allow (a single
    word longer than them stays one cue)."""
    result: list[Cue] = []
    end = 0.0
    for final in finals:
        if not final.text.strip():
            continue
        if not final.words:
            start, end = _span(final, end, duration)
            result.append(Cue(start, end, final.text.strip()))
            continue
        for group in _split(_display_words(final), max_chars, max_seconds):
            start, end = _seconds(group[0][1].start_ms), _seconds(group[-1][1].end_ms)
            result.append(Cue(start, max(start, end), " ".join(t for t, _ in group)))
    return result


def _timestamp(seconds: float, separator: str) -> str:
    ms = max(0, round(seconds * 1000))
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def srt_body(finals: Sequence[Final], duration: float) -> str:
    """``response_format=srt`` (SubRip): numbered cues, comma before the milliseconds."""
    return "".join(
        f"{n}\n{_timestamp(c.start, ',')} --> {_timestamp(c.end, ',')}\n{c.text}\n\n"
        for n, c in enumerate(cues(finals, duration), start=1)
    )


def vtt_body(finals: Sequence[Final], duration: float) -> str:
    """``response_format=vtt`` (WebVTT): the header, cues with a dot before the milliseconds."""
    return "WEBVTT\n\n" + "".join(
        f"{_timestamp(c.start, '.')} --> {_timestamp(c.end, '.')}\n{c.text}\n\n"
        for c in cues(finals, duration)
    )


def render(
    finals: Sequence[Final], duration: float, request: TranscriptionRequest
) -> RenderedResponse:
    """The response to ``request``: its body in the format asked, and its media type.

    Args:
        finals: The upload's finals in order, times from the start of the upload
            (:func:`~.chunking.stitch` of the chunks' finals).
        duration: Seconds of audio in the upload.
        request: The validated request.
    """
    fmt = request.response_format
    if fmt is ResponseFormat.JSON:
        body = json_body(finals, duration)
    elif fmt is ResponseFormat.TEXT:
        body = text_body(finals)
    elif fmt is ResponseFormat.VERBOSE_JSON:
        body = verbose_json_body(
            finals,
            duration,
            language_code=request.language_code,
            segments=request.wants_segments,
            words=request.wants_words,
        )
    elif fmt is ResponseFormat.SRT:
        body = srt_body(finals, duration)
    else:
        body = vtt_body(finals, duration)
    return RenderedResponse(body, MEDIA_TYPES[fmt])
