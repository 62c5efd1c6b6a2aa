"""The embedded server on loopback, driven by the official nvidia-riva-client, unchanged."""

from __future__ import annotations

import asyncio
import io
import re
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
import riva.client
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import riva.client.proto.riva_audio_pb2 as raudio
import soundfile as sf

from asr.audio import float32_to_pcm16, read_audio, resample
from asr.embedded import ASR_SERVICE, EmbeddedServer
from asr.wer import normalize, word_error_rate

from .conftest import ServerThread, load_set, scaled
from .riva_support import JFK, JFK_WAV, finals_text, rpc_error, streaming_config


def stream_file(
    service: riva.client.ASRService, path: Path, speed: float | None = None, **kwargs: object
) -> list[tuple[float, rasr.StreamingRecognitionResult]]:
    """Stream a WAV file as transcribe_file.py does: header in the first chunk."""
    delay = None if speed is None else (lambda _chunk, seconds: time.sleep(seconds / speed))
    start = time.monotonic()
    out = []
    with riva.client.AudioChunkFileIterator(str(path), 1600, delay_callback=delay) as chunks:
        for response in service.streaming_response_generator(
            chunks, streaming_config(path, **kwargs)
        ):
            out += [(time.monotonic() - start, r) for r in response.results]
    return out


def test_streaming_jfk_partials_then_final(asr_service: riva.client.ASRService) -> None:
    results = stream_file(asr_service, JFK_WAV, speed=1.5)  # 1.5 x real time: 7.3 s
    kinds = ["final" if r.is_final else "partial" for _, r in results]
    assert kinds[0] == "partial" and kinds[-1] == "final"
    # About one partial per second of new speech; fewer when the machine is loaded, as
    # stale partials are dropped rather than queued.
    assert kinds.count("partial") >= 2, kinds
    partials = [r for _, r in results if not r.is_final]
    assert all(0.0 <= r.stability <= 1.0 and r.audio_processed > 0 for r in partials)
    assert normalize(finals_text(results)) == normalize(JFK)
    # Without punctuation the text is lower case, as Riva without a punctuation model.
    assert finals_text(results) == JFK
    assert results[-1][1].audio_processed == pytest.approx(11.0, abs=0.05)
    # Riva's metadata on every result: channel 1, the language asked for; a final's text
    # ends with a space, and only interim results carry a stability.
    finals = [r for _, r in results if r.is_final]
    assert all(r.channel_tag == 1 for _, r in results)
    assert all(list(r.alternatives[0].language_code) == ["en-US"] for _, r in results)
    assert all(r.alternatives[0].transcript.endswith(" ") and r.stability == 0 for r in finals)
    first_partial = results[0][0]
    assert first_partial < scaled(4.0)  # while the 7.3 s of sending is still going on


def test_streaming_unpaced_with_word_offsets_and_punctuation(
    asr_service: riva.client.ASRService,
) -> None:
    results = stream_file(
        asr_service, JFK_WAV, enable_word_time_offsets=True, enable_automatic_punctuation=True
    )
    finals = [r for _, r in results if r.is_final]
    text = "".join(r.alternatives[0].transcript for r in finals).strip()
    assert normalize(text) == normalize(JFK)
    assert re.search(r"[,.]", text) and text[0].isupper()
    words = [w for r in finals for w in r.alternatives[0].words]
    assert normalize(" ".join(w.word for w in words)) == normalize(JFK)
    starts = [w.start_time for w in words]
    assert starts == sorted(starts)
    assert all(0 <= w.start_time <= w.end_time <= 11_000 for w in words)
    assert all(0 < w.confidence <= 1 for w in words)
    assert all(0 < r.alternatives[0].confidence <= 1 for r in finals)


def test_offline_recognize_whole_file(asr_service: riva.client.ASRService) -> None:
    config = riva.client.RecognitionConfig(
        language_code="en-US", max_alternatives=1, enable_word_time_offsets=True
    )
    riva.client.add_audio_file_specs_to_config(config, JFK_WAV)
    response = asr_service.offline_recognize(JFK_WAV.read_bytes(), config)
    text = "".join(r.alternatives[0].transcript for r in response.results).strip()
    assert text == JFK
    ends = [r.audio_processed for r in response.results]
    assert ends == sorted(ends) and 0 < ends[-1] <= 11.0
    words = [w for r in response.results for w in r.alternatives[0].words]
    assert [w.start_time for w in words] == sorted(w.start_time for w in words)


def test_offline_flac_and_resampled_mulaw_stream(asr_service: riva.client.ASRService) -> None:
    samples, _ = read_audio(JFK_WAV)
    flac = io.BytesIO()
    sf.write(flac, samples, 16_000, format="FLAC")
    config = riva.client.RecognitionConfig(language_code="en-US", encoding=raudio.FLAC)
    response = asr_service.offline_recognize(flac.getvalue(), config)
    # Riva's offline results end with a space too: the official script joins them as is.
    assert "".join(r.alternatives[0].transcript for r in response.results) == JFK + " "

    ulaw = io.BytesIO()
    sf.write(ulaw, resample(samples, 16_000, 8_000), 8_000, format="RAW", subtype="ULAW")
    data = ulaw.getvalue()
    config_s = streaming_config(
        encoding=raudio.MULAW, sample_rate_hertz=8_000, interim_results=False
    )
    chunks = [data[i : i + 800] for i in range(0, len(data), 800)]
    finals = [
        r.alternatives[0].transcript
        for resp in asr_service.streaming_response_generator(chunks, config_s)
        for r in resp.results
        if r.is_final
    ]
    # Telephone band and companding cost tiny.en "my" -> "am I" and a word or so more.
    assert word_error_rate([JFK], [" ".join(finals)]) <= 0.2


def test_two_utterances_give_two_finals_with_stream_times(
    asr_service: riva.client.ASRService, tmp_path: Path
) -> None:
    clips = load_set("ljspeech32")[:2]
    first, _ = read_audio(clips[0].path)
    second, _ = read_audio(clips[1].path)
    path = tmp_path / "two.wav"
    sf.write(
        path,
        np.concatenate([first, np.zeros(32_000, np.float32), second]),
        16_000,
        subtype="PCM_16",
    )
    results = stream_file(asr_service, path, enable_word_time_offsets=True)
    finals = [r for _, r in results if r.is_final]
    assert len(finals) == 2
    reference = f"{clips[0].text} {clips[1].text}"
    assert (
        word_error_rate([reference], [" ".join(r.alternatives[0].transcript for r in finals)])
        < 0.15
    )
    gap_start_ms = len(first) / 16
    assert finals[0].alternatives[0].words[-1].end_time <= gap_start_ms + 300
    assert finals[1].alternatives[0].words[0].start_time >= gap_start_ms + 2000 - 300


def test_silence_and_hiss_give_no_results(asr_service: riva.client.ASRService) -> None:
    hiss = np.random.default_rng(11).standard_normal(16_000 * 3) * 0.002
    pcm = bytes(16_000 * 2 * 3) + float32_to_pcm16(hiss)
    config = streaming_config(sample_rate_hertz=16_000, encoding=raudio.LINEAR_PCM)
    chunks = [pcm[i : i + 3200] for i in range(0, len(pcm), 3200)]
    responses = list(asr_service.streaming_response_generator(chunks, config))
    assert [r for resp in responses for r in resp.results] == []


def test_model_config_and_health(
    asr_service: riva.client.ASRService, riva_server: ServerThread
) -> None:
    response = asr_service.stub.GetRivaSpeechRecognitionConfig(
        rasr.RivaSpeechRecognitionConfigRequest()
    )
    by_name = {c.model_name: dict(c.parameters) for c in response.model_config}
    assert by_name["whisper-tiny.en-cpu-asr-streaming"]["streaming"] == "true"
    assert by_name["whisper-tiny.en-cpu-asr-offline"]["type"] == "offline"
    assert all(
        p["language_code"] == "en-US" and p["sample_rate"] == "16000" for p in by_name.values()
    )
    only = asr_service.stub.GetRivaSpeechRecognitionConfig(
        rasr.RivaSpeechRecognitionConfigRequest(model_name="whisper-tiny.en-cpu-asr-offline")
    )
    assert [c.model_name for c in only.model_config] == ["whisper-tiny.en-cpu-asr-offline"]

    with grpc.insecure_channel(riva_server.uri) as channel:
        health = health_grpc.HealthStub(channel)
        for service in ("", ASR_SERVICE):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        error = rpc_error(lambda: health.Check(health_pb2.HealthCheckRequest(service="nope")))
        assert error.code() == grpc.StatusCode.NOT_FOUND
        watch = health.Watch(health_pb2.HealthCheckRequest(service=ASR_SERVICE), timeout=5)
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        watch.cancel()


def _stream_error(
    service: riva.client.ASRService, requests: list[rasr.StreamingRecognizeRequest]
) -> grpc.RpcError:
    return rpc_error(lambda: list(service.stub.StreamingRecognize(iter(requests), timeout=30)))


def _config(**kwargs: object) -> rasr.StreamingRecognizeRequest:
    return rasr.StreamingRecognizeRequest(streaming_config=streaming_config(None, **kwargs))


def _audio(data: bytes = b"\x00\x00" * 1600) -> rasr.StreamingRecognizeRequest:
    return rasr.StreamingRecognizeRequest(audio_content=data)


def _diarize() -> rasr.SpeakerDiarizationConfig:
    return rasr.SpeakerDiarizationConfig(enable_speaker_diarization=True, max_speaker_count=3)


def _runtime(**runtime_config: str) -> rasr.StreamingRecognizeRequest:
    """A request with ``runtime_config`` (Riva 2.27) and a little audio."""
    return rasr.StreamingRecognizeRequest(
        audio_content=b"\x00\x00" * 1600, runtime_config=runtime_config
    )


@pytest.mark.parametrize(
    ("requests", "details"),
    [
        ([_audio()], "first StreamingRecognizeRequest must carry streaming_config"),
        ([_config(encoding=raudio.FLAC, sample_rate_hertz=16_000), _audio()], "FLAC"),
        (
            [_config(language_code="de-DE", sample_rate_hertz=16_000), _audio()],
            "Error: Unavailable model requested. Lang: de-DE, Type: online",
        ),
        (
            [_config(language_code="en-GB", sample_rate_hertz=16_000), _audio()],
            "Error: Unavailable model requested. Lang: en-GB, Type: online",
        ),
        ([_config(), _audio()], "sample_rate_hertz is not set"),
        ([_config(sample_rate_hertz=16_000), _audio(b"\x00\x01\x02")], "odd number"),
        (
            [_config(sample_rate_hertz=16_000, audio_channel_count=9), _audio()],
            "audio_channel_count",
        ),
        (
            [_config(sample_rate_hertz=16_000), _audio(), _config(sample_rate_hertz=16_000)],
            "only be sent in the first",
        ),
        (
            [_config(sample_rate_hertz=16_000, model="conformer-de"), _audio()],
            "Error: Unavailable model requested. Lang: en-US, Type: online "
            "(model 'conformer-de' is not served",
        ),
        (
            [_config(sample_rate_hertz=16_000, diarization_config=_diarize()), _audio()],
            "speaker diarization is not available",
        ),
        (
            [
                _config(sample_rate_hertz=16_000, custom_configuration={"left_padding": "1"}),
                _audio(),
            ],
            "custom_configuration key 'left_padding' is not supported",
        ),
        (
            [
                _config(sample_rate_hertz=16_000, custom_configuration={"beam_size": "99"}),
                _audio(),
            ],
            "'beam_size' must be an integer in [1, 8], got '99'",
        ),
        (
            [_config(sample_rate_hertz=16_000), _runtime(flush="true")],
            "runtime_config key 'flush' is not supported",
        ),
        (
            [_config(sample_rate_hertz=16_000), _audio(), _runtime(force_eou="yes")],
            "'force_eou' must be 'true' or 'false', got 'yes'",
        ),
    ],
    ids=[
        "no-config",
        "flac-stream",
        "german",
        "british",
        "no-rate",
        "odd-bytes",
        "channels",
        "second-config",
        "model",
        "diarization",
        "custom-key",
        "custom-value",
        "runtime-key",
        "runtime-value",
    ],
)
def test_invalid_streams(
    asr_service: riva.client.ASRService,
    requests: list[rasr.StreamingRecognizeRequest],
    details: str,
) -> None:
    error = _stream_error(asr_service, requests)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert details in (error.details() or "")


def test_invalid_offline_requests(asr_service: riva.client.ASRService) -> None:
    pcm = b"\x00\x00" * 1600
    for config, details in [
        (
            riva.client.RecognitionConfig(language_code="fr-FR", sample_rate_hertz=16_000),
            "Error: Unavailable model requested. Lang: fr-FR, Type: offline",
        ),
        (riva.client.RecognitionConfig(language_code="en-US"), "sample_rate_hertz"),
        (
            riva.client.RecognitionConfig(
                language_code="en-US", sample_rate_hertz=16_000, model="nope"
            ),
            "model 'nope' is not served",
        ),
    ]:
        error = rpc_error(lambda c=config: asr_service.offline_recognize(pcm, c))
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert details in (error.details() or "")


async def test_capacity_and_cancel() -> None:
    pcm = float32_to_pcm16(read_audio(JFK_WAV)[0])
    config = rasr.StreamingRecognizeRequest(
        streaming_config=rasr.StreamingRecognitionConfig(
            config=rasr.RecognitionConfig(
                language_code="en-US", sample_rate_hertz=16_000, encoding=raudio.LINEAR_PCM
            ),
            interim_results=True,
        )
    )
    async with (
        EmbeddedServer(port=0, max_streams=1) as server,
        grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel,
    ):
        stub = rasr_grpc.RivaSpeechRecognitionStub(channel)
        first = stub.StreamingRecognize(timeout=scaled(60))
        await first.write(config)
        await first.write(rasr.StreamingRecognizeRequest(audio_content=pcm))
        response = await first.read()  # the stream is live on the server
        assert response.results
        assert server.active_streams == 1

        second = stub.StreamingRecognize(timeout=scaled(30))
        await second.write(config)
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await second.read()
        assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "1 concurrent" in (info.value.details() or "")

        # Cancelling the first stream frees its slot and its queued work at once.
        for _ in range(20):
            await first.write(rasr.StreamingRecognizeRequest(audio_content=pcm))
        first.cancel()
        deadline = time.monotonic() + scaled(2.0)
        # Polls the server's counter from outside: the servicer has no event to await.
        while server.active_streams and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
        assert server.active_streams == 0
        ran = server.decode_stats["ran"]
        third = stub.StreamingRecognize(timeout=scaled(60))
        await third.write(config)
        await third.write(rasr.StreamingRecognizeRequest(audio_content=pcm))
        await third.done_writing()
        finals = [
            r.alternatives[0].transcript async for resp in third for r in resp.results if r.is_final
        ]
        assert "".join(finals).strip() == JFK
        # The cancelled stream's 220 s of audio were never decoded.
        assert server.decode_stats["ran"] - ran <= 6


def test_request_id_echoed_and_offline_audio_processed(
    asr_service: riva.client.ASRService,
) -> None:
    # Offline: the client's id comes back, and every result reports the whole audio.
    config = riva.client.RecognitionConfig(language_code="en-US", max_alternatives=1)
    riva.client.add_audio_file_specs_to_config(config, JFK_WAV)
    request = rasr.RecognizeRequest(config=config, audio=JFK_WAV.read_bytes())
    request.id.value = "request-42"
    response = asr_service.stub.Recognize(request, timeout=60)
    assert response.id.value == "request-42"
    assert response.results
    for result in response.results:
        assert result.audio_processed == pytest.approx(11.0, abs=0.05)
        assert result.channel_tag == 1
    # Streaming without an id: one UUID, the same on every response.
    requests = [
        rasr.StreamingRecognizeRequest(streaming_config=streaming_config(JFK_WAV)),
        rasr.StreamingRecognizeRequest(audio_content=JFK_WAV.read_bytes()),
    ]
    ids = {r.id.value for r in asr_service.stub.StreamingRecognize(iter(requests), timeout=60)}
    assert len(ids) == 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", ids.pop())
