"""The form of ``POST /v1/audio/transcriptions`` (asr_server.transcriptions): which fields
are refused or accepted and what they ask of Riva, and the subtitles rendered from finals.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import pytest

from asr.events import Final
from asr_server.transcriptions import (
    MEDIA_TYPES,
    InvalidRequestError,
    TranscriptionConfig,
    cues,
    parse_form,
    recognition_options,
    render,
)

from .transcription_support import timed_final

# --- request validation ------------------------------------------------------------------

# Form fields as the SDK or curl sends them, written as query strings.
REFUSED = [
    ("", "model", "model or language is required"),
    ("model=a&model=b", "model", "more than once"),
    ("model=whisper-1&temperature=0.7", "temperature", "deterministically"),
    ("model=whisper-1&temperature=hot", "temperature", "between 0 and 1"),
    ("model=whisper-1&response_format=json5", "response_format", "verbose_json"),
    ("model=whisper-1&timestamp_granularities[]=char", "timestamp_granularities", "'word'"),
    (
        "model=m&response_format=srt&timestamp_granularities[]=word",
        "timestamp_granularities",
        "verbose_json",
    ),
    ("model=whisper-1&prompt=The transcript of a lecture.", "prompt", "keywords[]"),
    ("model=whisper-1&stream=true", "stream", "WebSocket"),
    ("model=whisper-1&chunking_strategy[type]=server_vad", "chunking_strategy", "auto"),
    ("model=whisper-1&language=English!", "language", "BCP-47"),
    ("model=whisper-1&languages[]=en&languages[]=fr", "languages", "one language"),
    ("model=whisper-1&known_speaker_names[]=agent", "known_speaker_names", "diarize"),
    ("model=whisper-1&beam_size=4", "beam_size", "unknown parameter"),
]


def form(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


@pytest.mark.parametrize(("items", "param", "message"), REFUSED)
def test_request_refusals(items: str, param: str, message: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_form(form(items))
    assert caught.value.status == 400 and caught.value.param == param
    assert message in caught.value.message
    assert caught.value.body()["error"]["param"] == param


def test_unknown_model_refused_without_pass_through() -> None:
    config = TranscriptionConfig(
        models={"whisper-1": None, "parakeet": "parakeet-ctc-1.1b"}, pass_through_models=False
    )
    with pytest.raises(InvalidRequestError, match="models: parakeet, whisper-1"):
        parse_form([("model", "gpt-4o-transcribe")], config)


ACCEPTED: list[tuple[str, dict[str, Any]]] = [
    ("model=whisper-1&file=ignored", {"riva_model": None, "language_code": "en-US"}),
    ("model=whisper-1&language=en", {"language_code": "en-US"}),
    ("model=whisper-1&language=es", {"language_code": "es-US"}),
    ("language=de-de", {"model": None, "language_code": "de-DE"}),  # NIM: no model
    ("language=multi", {"language_code": "multi"}),
    ("model=parakeet-ctc-1.1b-en-us", {"riva_model": "parakeet-ctc-1.1b-en-us"}),
    ("model=whisper-1&temperature=0.0&prompt=&stream=false", {}),
    ("model=whisper-1&chunking_strategy=auto&languages[]=fr", {"language_code": "fr-FR"}),
    ("model=whisper-1&keywords[]=Riva&keywords[]= NIM ", {"keywords": ("Riva", "NIM")}),
    ("model=m&response_format=verbose_json&timestamp_granularities[]=word", {"wants_words": True}),
]


@pytest.mark.parametrize(("items", "expected"), ACCEPTED)
def test_request_accepted(items: str, expected: dict[str, Any]) -> None:
    request = parse_form(form(items))
    assert {k: getattr(request, k) for k in expected} == expected


@pytest.mark.parametrize(
    ("fmt", "word_offsets"),
    [("json", None), ("text", None), ("verbose_json", True), ("srt", True), ("vtt", True)],
)
def test_recognition_options(fmt: str, word_offsets: bool | None) -> None:
    request = parse_form([("model", "whisper-1"), ("response_format", fmt), ("keywords[]", "Riva")])
    options = recognition_options(request)
    assert options.automatic_punctuation is True and options.word_time_offsets is word_offsets
    assert (options.encoding, options.sample_rate_hz, options.channels) == ("LINEAR_PCM", 16_000, 1)
    assert options.boosted_words == ("Riva",) and options.model is None
    media = {"text": "text/plain", "srt": "application/x-subrip", "vtt": "text/vtt"}
    assert MEDIA_TYPES[request.response_format].startswith(media.get(fmt, "application/json"))


# --- subtitles of long utterances --------------------------------------------------------


def test_long_utterance_is_cut_into_short_cues_at_clause_ends() -> None:
    sentence = "This is the first clause of a long answer, and then it goes on for a while; " * 4
    final = timed_final(sentence.strip(), 2.0, 30.0)
    result = cues([final], 31.0)
    assert len(result) > 3
    assert " ".join(c.text for c in result) == final.text
    assert all(len(c.text) <= 84 and c.end - c.start <= 7.0 for c in result)
    assert sum(c.text.endswith((",", ";")) for c in result) >= len(result) - 1
    assert result[0].start == 2.0 and result[-1].end == final.words[-1].end_ms / 1000


def test_srt_hours_and_untimed_final() -> None:
    finals = [
        timed_final("late words", 3725.5, 3726.25),
        Final(text="no times", audio_processed=3730.0),
    ]
    body = render(finals, 3731.0, parse_form([("model", "m"), ("response_format", "srt")])).body
    assert body == (
        "1\n01:02:05,500 --> 01:02:06,175\nlate words\n\n"
        "2\n01:02:06,175 --> 01:02:10,000\nno times\n\n"
    )
