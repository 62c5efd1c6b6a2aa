"""``POST /v1/audio/transcriptions`` end to end: the official ``openai`` SDK (and raw
multipart over a socket) against a real gateway in front of the embedded Riva server.

Transcripts are checked by WER on real speech; refusals by the SDK's exception types,
OpenAI's error body and the close code the gateway counts for them; after each refusal
the gateway still transcribes.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
import urllib.error
import urllib.request
from typing import Any, Literal

import numpy as np
import openai
import pytest
import soundfile as sf
from openai.types.audio import Transcription, TranscriptionVerbose
from prometheus_client.parser import text_string_to_metric_families

from asr_server.app import GatewayServer
from asr_server.transcriptions.openapi import TranscriptionBody, VerboseTranscriptionBody

from .conftest import ServerThread, load_set, scaled
from .helpers import API_KEY, JFK, closed_port, until
from .rest_support import (
    JFK_WORDS,
    ffmpeg_encoded,
    multipart,
    parse_cues,
    post,
    rest_gateway,
    sdk,
    wer,
)

JFK_SECONDS = 11.0


def encoded(path: Any, fmt: str, subtype: str | None = None) -> bytes:
    samples, rate = sf.read(path, dtype="float32")
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def samples(gw: GatewayServer, name: str, **labels: str) -> float:
    """A counter's value as ``/metrics`` serves it (0 when the series is absent)."""
    text = gw.metrics.render().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return 0.0


def ended(gw: GatewayServer, code: int, by: str = "server") -> float:
    return samples(
        gw, "asr_gateway_sessions_ended_total", interface="rest", close_code=str(code), by=by
    )


async def still_serves(gw: GatewayServer) -> None:
    result = await sdk(gw).audio.transcriptions.create(model="whisper-1", file=JFK.read_bytes())
    assert wer(JFK_WORDS, result.text) <= 0.15, result.text


class SlowUpload:
    """A request over a raw socket whose body is sent in two halves, when told."""

    def __init__(self, gw: GatewayServer, data: bytes) -> None:
        self.body, content_type = multipart(
            ("model", b"whisper-1", None), ("file", data, "jfk.wav")
        )
        self.head = (
            f"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {API_KEY}\r\nContent-Type: {content_type}\r\n"
            f"Content-Length: {len(self.body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        self.port = gw.port

    async def start(self) -> None:
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(self.head + self.body[: len(self.body) // 2])
        await self.writer.drain()

    async def finish(self) -> tuple[int, bytes]:
        self.writer.write(self.body[len(self.body) // 2 :])
        await self.writer.drain()
        return await self.response()

    async def response(self) -> tuple[int, bytes]:
        async with asyncio.timeout(scaled(60)):
            answer = await self.reader.read()
        self.writer.close()
        head, _, body = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), body


# --- transcripts --------------------------------------------------------------------------


async def test_every_response_format(riva_server: ServerThread) -> None:
    async with rest_gateway(riva_server.uri) as gw:
        client = sdk(gw)
        create = client.audio.transcriptions.create
        raw = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1", file=JFK.open("rb")
        )
        TranscriptionBody.model_validate_json(raw.http_response.content)  # the documented model
        result = raw.parse()
        assert isinstance(result, Transcription)
        assert wer(JFK_WORDS, result.text) <= 0.15, result.text

        text = await create(model="whisper-1", file=JFK.open("rb"), response_format="text")
        assert text.endswith("\n") and wer(JFK_WORDS, text) <= 0.15

        raw_verbose = await client.audio.transcriptions.with_raw_response.create(
            model="whisper-1",
            file=JFK.open("rb"),
            response_format="verbose_json",
            timestamp_granularities=["word"],
        )
        VerboseTranscriptionBody.model_validate_json(raw_verbose.http_response.content)
        verbose = raw_verbose.parse()
        assert isinstance(verbose, TranscriptionVerbose)
        assert verbose.language == "english" and verbose.duration == JFK_SECONDS
        assert verbose.words and verbose.segments is None
        assert wer(JFK_WORDS, " ".join(w.word for w in verbose.words)) <= 0.15
        starts = [w.start for w in verbose.words]
        assert starts == sorted(starts)
        assert all(0 <= w.start <= w.end <= JFK_SECONDS for w in verbose.words)

        segmented = await create(
            model="whisper-1", file=JFK.open("rb"), response_format="verbose_json"
        )
        assert segmented.segments and segmented.words is None
        assert [s.start for s in segmented.segments] == sorted(s.start for s in segmented.segments)

        subtitles: tuple[tuple[Literal["srt", "vtt"], str], ...] = (("srt", ","), ("vtt", "."))
        for fmt, sep in subtitles:
            body = await create(model="whisper-1", file=JFK.open("rb"), response_format=fmt)
            if fmt == "vtt":
                assert body.startswith("WEBVTT\n\n")
                body = body.removeprefix("WEBVTT\n\n")
            parsed = parse_cues(body, sep)
            assert parsed and wer(JFK_WORDS, " ".join(c[3] for c in parsed)) <= 0.15
            assert all(0 <= start <= end <= JFK_SECONDS for _, start, end, _ in parsed)
            assert [c[1] for c in parsed] == sorted(c[1] for c in parsed)
            if fmt == "srt":
                assert [c[0] for c in parsed] == [str(n) for n in range(1, len(parsed) + 1)]

        assert samples(gw, "asr_gateway_sessions_started_total", interface="rest") == 6
        assert ended(gw, 1000) == 6
        assert samples(gw, "asr_gateway_audio_seconds_total", interface="rest") == 6 * 11.0
        assert gw.active_sessions == 0


@pytest.mark.parametrize(("fmt", "subtype"), [("FLAC", None), ("OGG", "OPUS"), ("OGG", "VORBIS")])
async def test_compressed_uploads(riva_server: ServerThread, fmt: str, subtype: str | None) -> None:
    data = encoded(JFK, fmt, subtype)
    async with rest_gateway(riva_server.uri) as gw:
        result = await sdk(gw).audio.transcriptions.create(
            model="whisper-1", file=(f"jfk.{fmt.lower()}", data), language="en"
        )
        assert wer(JFK_WORDS, result.text) <= 0.15, result.text


async def test_long_upload_in_pieces_in_order(riva_server: ServerThread) -> None:
    clips = load_set("librispeech_mini")[:4]
    pcm = np.concatenate([sf.read(c.path, dtype="int16")[0] for c in clips])
    buffer = io.BytesIO()
    sf.write(buffer, pcm, 16_000, format="WAV", subtype="PCM_16")
    seconds = len(pcm) / 16_000
    limits = {"chunk_seconds": 30}
    async with rest_gateway(riva_server.uri, transcriptions={"limits": limits}) as gw:
        result = await sdk(gw).audio.transcriptions.create(
            model="whisper-1",
            file=("long.wav", buffer.getvalue()),
            response_format="verbose_json",
        )
    assert seconds > 30 and result.duration == pytest.approx(seconds, abs=0.01)
    assert wer(" ".join(c.text for c in clips), result.text) <= 0.15, result.text
    assert result.segments is not None
    starts = [s.start for s in result.segments]
    assert starts == sorted(starts) and result.segments[-1].end <= seconds
    assert result.segments[-1].end > 30  # the second piece's finals on the upload's clock


async def test_pieces_recognised_while_the_upload_arrives(riva_server: ServerThread) -> None:
    clips = load_set("librispeech_mini")[:4]
    pcm = np.concatenate([sf.read(c.path, dtype="int16")[0] for c in clips])
    buffer = io.BytesIO()
    sf.write(buffer, pcm, 16_000, format="WAV", subtype="PCM_16")
    limits = {"chunk_seconds": 10}
    async with rest_gateway(riva_server.uri, transcriptions={"limits": limits}) as gw:
        upload = SlowUpload(gw, buffer.getvalue())
        before = riva_server.decodes()
        await upload.start()  # half of 38 s: the first piece is complete
        await until(lambda: riva_server.decodes() > before)  # Riva works on it already
        status, body = await upload.finish()
    assert status == 200 and len(json.loads(body)["text"].split()) > 50


async def test_nim_style_raw_multipart_with_language_only(riva_server: ServerThread) -> None:
    async with rest_gateway(riva_server.uri) as gw:
        # curl -F file=@jfk.wav -F language=en: the file first, no model.
        body, kind = multipart(("file", JFK.read_bytes(), "jfk.wav"), ("language", b"en", None))
        status, headers, answer = await asyncio.to_thread(post, gw, body, kind)
        assert status == 200 and headers["Content-Type"] == "application/json"
        assert wer(JFK_WORDS, json.loads(answer)["text"]) <= 0.15

        # A field after the file that would change what Riva was asked is refused.
        body, kind = multipart(
            ("model", b"whisper-1", None),
            ("file", JFK.read_bytes(), "jfk.wav"),
            ("response_format", b"verbose_json", None),
        )
        status, _, answer = await asyncio.to_thread(post, gw, body, kind)
        assert status == 400 and "before the file" in json.loads(answer)["error"]["message"]

        status, _, answer = await asyncio.to_thread(post, gw, b"{}", "application/json")
        assert status == 415
        await still_serves(gw)


# --- refusals -----------------------------------------------------------------------------


async def test_bad_uploads_and_fields(riva_server: ServerThread) -> None:
    limits = {"max_bytes": 400_000, "max_seconds": 8}
    async with rest_gateway(riva_server.uri, transcriptions={"limits": limits}) as gw:
        create = sdk(gw).audio.transcriptions.create
        buffer = io.BytesIO()
        sf.write(buffer, sf.read(JFK, dtype="float32")[0][: 7 * 16_000], 16_000, format="FLAC")
        cut = buffer.getvalue()  # 7 s: under the limit
        cases: list[tuple[Any, type[openai.APIStatusError], int, str, int]] = [
            (
                ("notes.wav", b"hello, this is text" * 20),
                openai.BadRequestError,
                400,
                "invalid_audio",
                4003,
            ),
            (("big.wav", JFK.read_bytes() * 2), openai.APIStatusError, 413, "file_too_large", 4004),
            (("jfk.wav", JFK.read_bytes()), openai.BadRequestError, 400, "audio_too_long", 4010),
            (
                ("a.m4a", ffmpeg_encoded("mp4", "aac")),
                openai.APIStatusError,
                415,
                "unsupported_audio_format",
                4003,
            ),
            (("jfk.ogg", encoded(JFK, "OGG")), openai.BadRequestError, 400, "audio_too_long", 4010),
        ]
        for file, error, status, code, close in cases:
            before = ended(gw, close)
            with pytest.raises(error) as caught:
                await create(model="whisper-1", file=file)
            assert caught.value.status_code == status
            assert isinstance(caught.value.body, dict) and caught.value.body["code"] == code
            assert ended(gw, close) == before + 1
        with pytest.raises(openai.BadRequestError) as bad:
            await create(model="whisper-1", file=cut, response_format="diarized_json")
        assert isinstance(bad.value.body, dict) and bad.value.body["param"] == "response_format"
        assert ended(gw, 4002) == 1
        result = await create(model="whisper-1", file=("cut.flac", cut))  # still serving
        assert (
            wer("and so my fellow americans ask not what your country can do", result.text) <= 0.15
        )


async def test_credentials(riva_server: ServerThread, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "asr.server")
    async with rest_gateway(riva_server.uri) as gw:
        with pytest.raises(openai.AuthenticationError) as caught:
            await sdk(gw, "sk-wrong").audio.transcriptions.create(model="whisper-1", file=b"x")
        assert caught.value.response.headers["WWW-Authenticate"].startswith("Bearer")
        body, kind = multipart(("model", b"whisper-1", None), ("file", JFK.read_bytes(), "a.wav"))
        status, headers, _ = await asyncio.to_thread(post, gw, body, kind, None)
        assert status == 401 and "WWW-Authenticate" in headers
        assert ended(gw, 4001) == 2
        assert samples(gw, "asr_gateway_sessions_started_total", interface="rest") == 0

        def issue() -> str:
            request = urllib.request.Request(
                gw.base_url + "/v1/tokens",
                method="POST",
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
            with urllib.request.urlopen(request, timeout=scaled(10)) as response:
                token: str = json.loads(response.read())["token"]
            return token

        token = await asyncio.to_thread(issue)
        result = await sdk(gw, token).audio.transcriptions.create(
            model="whisper-1", file=JFK.read_bytes()
        )
        assert wer(JFK_WORDS, result.text) <= 0.15

        with pytest.raises(openai.RateLimitError) as limited:  # the shared failure back-off
            for _ in range(20):
                with pytest.raises(openai.AuthenticationError):
                    await sdk(gw, "sk-guess").audio.transcriptions.create(model="m", file=b"x")
        assert int(limited.value.response.headers["Retry-After"]) >= 1

    lines = [r.getMessage() for r in caplog.records if r.name == "asr.server"]
    outcomes = [line for line in lines if line.startswith("POST /v1/audio/transcriptions: ")]
    statuses = [int(line.split()[2].rstrip(",")) for line in outcomes]
    assert statuses[:3] == [401, 401, 200] and statuses[-1] == 429  # one line per request
    assert not any(secret in line for line in lines for secret in (API_KEY, token, "sk-guess"))


async def test_at_capacity_and_shutdown_drain(riva_server: ServerThread) -> None:
    async with rest_gateway(riva_server.uri, limits={"max_sessions": 1}) as gw:
        first = SlowUpload(gw, JFK.read_bytes())
        await first.start()
        await until(lambda: gw.active_sessions == 1)  # admitted, reading its body
        with pytest.raises(openai.RateLimitError) as caught:
            await sdk(gw).audio.transcriptions.create(model="whisper-1", file=JFK.read_bytes())
        assert caught.value.response.headers["Retry-After"] == "1"
        assert ended(gw, 4006) == 1
        status, body = await first.finish()
        assert status == 200 and wer(JFK_WORDS, json.loads(body)["text"]) <= 0.15
        await until(lambda: gw.active_sessions == 0)
        await still_serves(gw)

        # At shutdown, a request in flight finishes within the drain timeout ...
        second = SlowUpload(gw, JFK.read_bytes())
        await second.start()
        await until(lambda: gw.active_sessions == 1)
        drain = asyncio.create_task(gw.shutdown(scaled(20)))
        await asyncio.sleep(0.2)  # the drain has begun: the request goes on regardless
        status, body = await second.finish()
        assert status == 200 and wer(JFK_WORDS, json.loads(body)["text"]) <= 0.15
        await drain
        assert ended(gw, 1000) == 3


async def test_shutdown_deadline_answers_503(riva_server: ServerThread) -> None:
    async with rest_gateway(riva_server.uri) as gw:
        stuck = SlowUpload(gw, JFK.read_bytes())
        await stuck.start()
        await until(lambda: gw.active_sessions == 1)
        await gw.shutdown(0.5)  # the upload never completes
        status, body = await stuck.response()
        assert status == 503 and json.loads(body)["error"]["code"] == "shutting_down"
        assert ended(gw, 1001) == 1 and gw.active_sessions == 0


async def test_riva_down_is_503() -> None:
    async with rest_gateway(f"127.0.0.1:{closed_port()}") as gw:
        for _ in range(2):  # the second after the breaker's first failures
            with pytest.raises(openai.InternalServerError) as caught:
                await sdk(gw).audio.transcriptions.create(model="whisper-1", file=JFK.read_bytes())
            assert caught.value.status_code == 503
            assert isinstance(caught.value.body, dict)
            assert caught.value.body["code"] == "backend_unavailable"
            assert "127.0.0.1" not in caught.value.body["message"]  # no internal address
        assert ended(gw, 4007) == 2
        status = await asyncio.to_thread(
            lambda: urllib.request.urlopen(gw.base_url + "/healthz", timeout=scaled(10)).status
        )
        assert status == 200


def test_openapi_documents_the_route() -> None:
    from asr.settings import RivaSettings
    from asr_server.settings import ServerSettings

    app = GatewayServer(ServerSettings(port=0), RivaSettings(uri="127.0.0.1:1")).app
    operation = app.openapi()["paths"]["/v1/audio/transcriptions"]["post"]
    form = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["required"] == ["file"] and {"model", "language", "response_format"} <= set(
        form["properties"]
    )
    assert set(operation["responses"]) == {"200", "400", "401", "413", "415", "429", "503"}
    content = operation["responses"]["200"]["content"]
    assert {"application/json", "text/plain", "application/x-subrip", "text/vtt"} <= set(content)
    refs = re.findall(r"#/components/schemas/(\w+)", json.dumps(content["application/json"]))
    assert set(refs) == {"TranscriptionBody", "VerboseTranscriptionBody"}
