"""The pure parts of ``POST /v1/audio/transcriptions`` (asr_server.transcriptions).

The formats are checked against the ``openai`` SDK's own request encoding and response
parsers: the SDK talks to the functions through an in-process transport, no socket. The
upload checks and the chunker run on real files made at test time from the JFK clip and
LibriSpeech clips. Riva's part is a scripted recogniser that times the JFK sentence's
words evenly over the audio it is given: these tests are about everything but Riva.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx2
import numpy as np
import openai
import pytest
import soundfile as sf
from openai.types.audio import Transcription, TranscriptionVerbose
from starlette.datastructures import UploadFile
from starlette.requests import Request

from asr.events import Alternative, Final, Word
from asr.options import RecognitionOptions
from asr_server.transcriptions import (
    MEDIA_TYPES,
    AudioTooLongError,
    Container,
    InvalidRequestError,
    NotAudioError,
    PcmChunk,
    TranscriptionConfig,
    TranscriptionError,
    UnsupportedMediaTypeError,
    UploadLimits,
    UploadTooLargeError,
    cues,
    iter_upload,
    parse_form,
    pcm_chunks,
    probe,
    recognition_options,
    render,
    sniff,
    stitch,
    transcribe_chunks,
)

from .rest_support import ffmpeg_encoded, parse_cues

JFK_TEXT = (
    "And so, my fellow Americans, ask not what your country can do for you, "
    "ask what you can do for your country."
)


def timed_final(text: str, start: float, end: float) -> Final:
    """A final whose words are spread evenly over [start, end] seconds."""
    tokens = text.split()
    step = (end - start) / len(tokens)
    words = tuple(
        Word(
            word=t,
            start_ms=round((start + i * step) * 1000),
            end_ms=round((start + (i + 0.8) * step) * 1000),
        )
        for i, t in enumerate(tokens)
    )
    return Final(text=text, words=words, audio_processed=end)


async def scripted_recognize(pcm: bytes, options: RecognitionOptions) -> list[Final]:
    seconds = len(pcm) / 32000
    return [timed_final(JFK_TEXT, 0.3, seconds - 0.5)] if seconds > 1 else []


async def blocks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def jfk(speech_dir: Path) -> tuple[np.ndarray[Any, Any], int, bytes]:
    path = speech_dir / "jfk" / "jfk.wav"
    samples, rate = sf.read(path, dtype="float32")
    return samples, rate, path.read_bytes()


def encoded(
    samples: np.ndarray[Any, Any], rate: int, fmt: str, subtype: str | None = None
) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


# --- the SDK against the route's pure parts, in process ---------------------------------


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


# --- upload checks -----------------------------------------------------------------------


def test_sniff_real_files(jfk: Any) -> None:
    samples, rate, wav = jfk
    assert sniff(wav[:64]) is Container.WAV
    assert sniff(encoded(samples, rate, "FLAC")[:64]) is Container.FLAC
    assert sniff(encoded(samples, rate, "OGG", "OPUS")[:64]) is Container.OGG
    assert sniff(encoded(samples, rate, "OGG", "VORBIS")[:64]) is Container.OGG
    assert sniff(encoded(samples, rate, "MP3")[:64]) is Container.MP3
    assert probe(wav[:64]).duration == 11.0
    assert probe(encoded(samples, rate, "FLAC")[:64]).duration == 11.0
    for container, codec in [("ipod", "aac"), ("webm", "libopus"), ("adts", "aac")]:
        with pytest.raises(UnsupportedMediaTypeError) as caught:
            sniff(ffmpeg_encoded(container, codec)[:64])
        assert caught.value.status == 415
    with pytest.raises(NotAudioError) as not_audio:
        sniff(b"Hello, this is a text file, not a recording.\n")
    assert not_audio.value.status == 400


async def decode_all(data: bytes, limits: UploadLimits | None = None) -> list[PcmChunk]:
    return [c async for c in pcm_chunks(blocks(data), limits)]


@pytest.mark.parametrize("kind", ["wav", "flac", "opus", "vorbis", "mp3", "wav24-44k-stereo"])
async def test_every_accepted_format_decodes_to_its_length(jfk: Any, kind: str) -> None:
    samples, rate, wav = jfk
    data = {
        "wav": wav,
        "flac": encoded(samples, rate, "FLAC"),
        "opus": encoded(samples, rate, "OGG", "OPUS"),
        "vorbis": encoded(samples, rate, "OGG", "VORBIS"),
        "mp3": encoded(samples, rate, "MP3"),
        "wav24-44k-stereo": encoded(
            np.stack(
                [np.interp(np.arange(485_100) / 44_100 * 16_000, np.arange(len(samples)), samples)]
                * 2,
                axis=1,
            ),
            44_100,
            "WAV",
            "PCM_24",
        ),
    }[kind]
    chunks = await decode_all(data)
    assert abs(sum(c.duration for c in chunks) - 11.0) < 0.06  # MP3 pads its last frame
    if kind == "wav":
        assert b"".join(c.pcm for c in chunks) == wav[44:]  # 16 kHz PCM16 passes untouched


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda wav: wav[: len(wav) // 2], NotAudioError, "truncated"),
        (lambda wav: wav[:30], NotAudioError, "truncated inside its header"),
        (lambda wav: b"", NotAudioError, "empty"),
        (lambda wav: b"just some text\n" * 100, NotAudioError, "not audio"),
        (lambda wav: wav[:44] + b"\x00" * 5, NotAudioError, "truncated"),
    ],
)
async def test_bad_uploads(
    jfk: Any, make: Any, error: type[TranscriptionError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        await decode_all(make(jfk[2]))
    assert caught.value.status == 400 and caught.value.param == "file"


async def test_size_and_duration_limits(jfk: Any) -> None:
    samples, rate, wav = jfk
    with pytest.raises(UploadTooLargeError) as large:
        await decode_all(wav, UploadLimits(max_bytes=100_000))
    assert large.value.status == 413
    for data in (wav, encoded(samples, rate, "FLAC"), encoded(samples, rate, "OGG", "OPUS")):
        with pytest.raises(AudioTooLongError, match="11.0 s long") as long:
            await decode_all(data, UploadLimits(max_seconds=5))
        assert long.value.status == 400
    # A WAV written while recording, its data size never filled in, is read to its end
    # and limited by the samples decoded.
    unsized = wav[:40] + b"\xff\xff\xff\xff" + wav[44:]
    assert sum(c.duration for c in await decode_all(unsized)) == 11.0
    with pytest.raises(AudioTooLongError):
        await decode_all(unsized, UploadLimits(max_seconds=5))


# --- chunking a long upload --------------------------------------------------------------


async def test_long_upload_cut_at_quiet_points_and_stitched(speech_dir: Path) -> None:
    clips = sorted((speech_dir / "librispeech_mini").glob("*.wav"))
    pcm = np.concatenate([sf.read(p, dtype="int16")[0] for p in clips])
    data = encoded(pcm, 16_000, "WAV", "PCM_16")
    limits = UploadLimits(chunk_seconds=15, cut_search_seconds=4)
    chunks = await decode_all(data, limits)
    total = len(pcm) / 16_000
    assert total > 60 and len(chunks) >= total // 15
    assert b"".join(c.pcm for c in chunks) == pcm.tobytes()  # nothing lost, nothing twice
    assert [c.start_sample for c in chunks] == list(
        np.cumsum([0] + [len(c.pcm) // 2 for c in chunks[:-1]])
    )
    assert all(c.duration <= 15 for c in chunks)
    assert all(c.duration >= 11 for c in chunks[:-1])  # cut in the last 4 s before the limit
    frames = pcm[: len(pcm) // 1600 * 1600].astype(np.float64).reshape(-1, 1600)
    loud = np.percentile(np.sqrt((frames**2).mean(axis=1)), 75)
    for chunk in chunks[1:]:
        around = pcm[chunk.start_sample - 800 : chunk.start_sample + 800].astype(np.float64)
        assert np.sqrt((around**2).mean()) < 0.1 * loud  # a pause, not a word

    transcript = await transcribe_chunks(
        blocks_of(chunks), scripted_recognize, RecognitionOptions()
    )
    assert transcript.duration == total
    assert len(transcript.finals) == len(chunks)
    for chunk, final in zip(chunks, transcript.finals, strict=True):
        assert final.words[0].start_ms == chunk.start_ms + 300
        assert final.audio_processed == pytest.approx(chunk.end_seconds - 0.5)
    starts = [w.start_ms for f in transcript.finals for w in f.words]
    assert starts == sorted(starts)


async def blocks_of(chunks: list[PcmChunk]) -> AsyncIterator[PcmChunk]:
    for chunk in chunks:
        yield chunk


def test_stitch_offsets_alternatives_too() -> None:
    chunk = PcmChunk(b"\x00\x00" * 16_000, start_sample=480_000)
    word = Word(word="hi", start_ms=100, end_ms=400)
    final = Final(
        text="hi",
        words=(word,),
        alternatives=(Alternative(text="hi", words=(word,)),),
        audio_processed=1.0,
    )
    [moved] = stitch([(chunk, [final])])
    assert (moved.words[0].start_ms, moved.words[0].end_ms) == (30_100, 30_400)
    assert moved.alternatives[0].words[0].start_ms == 30_100 and moved.audio_processed == 31.0
