"""``POST /v1/audio/transcriptions`` as the ``openai`` SDK sees it (asr_server.transcriptions).

The formats are checked against the SDK's own request encoding and response parsers: the
SDK talks to the route's pure parts through an in-process transport, no socket. Riva's part
is a scripted recogniser that times the JFK sentence's words evenly over the audio it is
given: these tests are about everything but Riva.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai.types.audio import Transcription, TranscriptionVerbose
from starlette.datastructures import UploadFile
from starlette.requests import Request

from asr_server.transcriptions import (
    TranscriptionError,
    iter_upload,
    parse_form,
    pcm_chunks,
    recognition_options,
    render,
    transcribe_chunks,
)

from .rest_support import ffmpeg_encoded, parse_cues
from .transcription_support import (
    JFK_TEXT,
    JfkClip,
    encoded,
    read_jfk,
    scripted_recognize,
    timed_final,
)


@pytest.fixture(scope="module")
def jfk(speech_dir: Path) -> JfkClip:
    return read_jfk(speech_dir)


async def gateway(request: httpx2.Request) -> httpx2.Response:
    """What the route does, over an in-process transport."""
    body = await request.aread()
    scope = {
        "type": "http",
        "method": "POST",
        "path": request.url.path,
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in request.headers.items()],
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(scope, receive).form()
    try:
        parsed = parse_form(form.multi_items())
        upload = form["file"]
        assert isinstance(upload, UploadFile)
        chunks = pcm_chunks(iter_upload(upload.read))
        transcript = await transcribe_chunks(
            chunks, scripted_recognize, recognition_options(parsed)
        )
    except TranscriptionError as exc:
        return httpx2.Response(exc.status, json=exc.body())
    rendered = render(transcript.finals, transcript.duration, parsed)
    return httpx2.Response(
        200, content=rendered.body.encode(), headers={"content-type": rendered.media_type}
    )


@pytest.fixture
async def client() -> AsyncIterator[openai.AsyncOpenAI]:
    transport = httpx2.MockTransport(gateway)
    async with httpx2.AsyncClient(transport=transport) as http:
        yield openai.AsyncOpenAI(
            api_key="k", base_url="http://gateway/v1", http_client=http, max_retries=0
        )


async def test_sdk_parses_json_and_text(client: openai.AsyncOpenAI, jfk: Any) -> None:
    data = jfk[2]
    result = await client.audio.transcriptions.create(model="whisper-1", file=("jfk.wav", data))
    assert isinstance(result, Transcription) and result.text == JFK_TEXT
    assert (
        result.usage is not None and result.usage.type == "duration" and result.usage.seconds == 11
    )
    text = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.wav", data),
        response_format="text",
        language="en",
        temperature=0,
    )
    assert text == JFK_TEXT + "\n"


@pytest.mark.parametrize(
    ("granularities", "segments", "words"),
    [
        ([], True, False),
        (["segment"], True, False),
        (["word"], False, True),
        (["word", "segment"], True, True),
    ],
)
async def test_sdk_parses_verbose_json(
    client: openai.AsyncOpenAI, jfk: Any, granularities: Any, segments: bool, words: bool
) -> None:
    result = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.flac", encoded(jfk[0], jfk[1], "FLAC")),
        response_format="verbose_json",
        timestamp_granularities=granularities,
    )
    assert isinstance(result, TranscriptionVerbose)
    assert (result.language, result.duration, result.text) == ("english", 11.0, JFK_TEXT)
    assert (result.segments is not None) == segments and (result.words is not None) == words
    expected = timed_final(JFK_TEXT, 0.3, 10.5)
    if result.segments is not None:
        [segment] = result.segments
        assert (segment.id, segment.text, segment.tokens) == (0, " " + JFK_TEXT, [])
        assert (segment.start, segment.end) == (0.3, expected.words[-1].end_ms / 1000)
        assert segment.temperature == 0 and segment.avg_logprob == 0 and segment.no_speech_prob == 0
        assert 1 < segment.compression_ratio < 2.4  # Whisper's "not a repetition loop"
    if result.words is not None:
        assert [w.word for w in result.words] == JFK_TEXT.split()
        assert [(w.start, w.end) for w in result.words] == [
            (w.start_ms / 1000, w.end_ms / 1000) for w in expected.words
        ]


@pytest.mark.parametrize(("fmt", "sep"), [("srt", ","), ("vtt", ".")])
async def test_sdk_gets_subtitles_with_word_times(
    client: openai.AsyncOpenAI, jfk: Any, fmt: Any, sep: str
) -> None:
    body = await client.audio.transcriptions.create(
        model="whisper-1",
        file=("jfk.ogg", encoded(jfk[0], jfk[1], "OGG", "OPUS")),
        response_format=fmt,
    )
    assert isinstance(body, str)
    if fmt == "vtt":
        assert body.startswith("WEBVTT\n\n")
        body = body.removeprefix("WEBVTT\n\n")
    parsed = parse_cues(body, sep)
    if fmt == "srt":
        assert [n for n, *_ in parsed] == [str(i) for i in range(1, len(parsed) + 1)]
    assert " ".join(text for *_, text in parsed) == JFK_TEXT
    words = timed_final(JFK_TEXT, 0.3, 10.5).words
    assert parsed[0][1] == words[0].start_ms / 1000 and parsed[-1][2] == words[-1].end_ms / 1000
    assert all(start < end for _, start, end, _ in parsed)
    assert all(a[2] <= b[1] for a, b in zip(parsed, parsed[1:], strict=False))


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"temperature": "0.2"}, "temperature"),
        ({"response_format": "diarized_json"}, "response_format"),
        ({"timestamp_granularities[]": "word"}, "timestamp_granularities"),
        ({"prompt": "Umm, let me think like, hmm"}, "prompt"),
        ({"include[]": "logprobs"}, "include"),
    ],
)
async def test_sdk_sees_refusals_as_bad_request(
    client: openai.AsyncOpenAI, jfk: Any, fields: dict[str, str], param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await client.audio.transcriptions.create(
            model="whisper-1", file=("jfk.wav", jfk[2]), extra_body=fields
        )
    assert caught.value.param == param


async def test_sdk_sees_unsupported_container_as_415(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        await client.audio.transcriptions.create(
            model="whisper-1", file=("a.m4a", ffmpeg_encoded("ipod", "aac"))
        )
    assert caught.value.status_code == 415 and "WAV, FLAC, Ogg" in caught.value.message
