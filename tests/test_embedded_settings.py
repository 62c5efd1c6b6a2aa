"""``asr riva-local``'s documented settings, each seen from a real Riva client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import riva.client
import riva.client.proto.riva_asr_pb2 as rasr

from asr.embedded.catalog import DEFAULT_MODEL_ALIASES
from asr.wer import word_error_rate

from .conftest import SPEECH, ServerThread
from .helpers import JFK_TEXT, RivaProcess, closed_port

JFK = SPEECH / "jfk" / "jfk.wav"


@pytest.fixture(scope="module")
def configured() -> Iterator[RivaProcess]:
    process = RivaProcess(
        closed_port(), "--model-aliases", "my-nim-asr, other-asr", "--short-stop-history-ms", "0"
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


def finals(uri: str, model: str = "", custom: str = "") -> list[str]:
    """JFK streamed as fast as it can be sent, as NVIDIA's transcribe_file.py does."""
    auth = riva.client.Auth(uri=uri)
    try:
        config = riva.client.StreamingRecognitionConfig(
            config=riva.client.RecognitionConfig(language_code="en-US", model=model),
            interim_results=False,
        )
        riva.client.add_audio_file_specs_to_config(config, str(JFK))
        riva.client.add_custom_configuration_to_config(config, custom)
        with riva.client.AudioChunkFileIterator(str(JFK), 1600) as chunks:
            responses = riva.client.ASRService(auth).streaming_response_generator(chunks, config)
            return [
                r.alternatives[0].transcript
                for resp in responses
                for r in resp.results
                if r.is_final and r.alternatives
            ]
    finally:
        auth.channel.close()


def test_model_aliases_replace_the_defaults(configured: RivaProcess) -> None:
    auth = riva.client.Auth(uri=configured.uri)
    try:
        response = riva.client.ASRService(auth).stub.GetRivaSpeechRecognitionConfig(
            rasr.RivaSpeechRecognitionConfigRequest()
        )
    finally:
        auth.channel.close()
    names = {c.model_name: dict(c.parameters) for c in response.model_config}
    assert names["my-nim-asr"]["alias_of"] == "whisper-tiny.en-cpu-asr-streaming"
    assert "other-asr" in names and not set(DEFAULT_MODEL_ALIASES) & set(names)
    assert word_error_rate([JFK_TEXT], [" ".join(finals(configured.uri, "my-nim-asr"))]) <= 0.15


def test_without_the_short_utterance_window_short_phrases_end_sooner(
    configured: RivaProcess, riva_server: ServerThread
) -> None:
    # JFK pauses ~1 s after "fellow Americans" and "ask not": with the longer window for
    # utterances under 4 s of speech (default 1.5 s) they stay in one final; without it
    # the 0.5 s stop window ends them there.
    default, short = finals(riva_server.uri), finals(configured.uri)
    assert len(short) > len(default), (default, short)
    assert word_error_rate([JFK_TEXT], [" ".join(short)]) <= 0.25


# What NVIDIA's voice-agent examples send a Riva NIM with Silero VAD (seconds).
NEURAL_VAD = (
    "neural_vad.onset:0.5,neural_vad.offset:0.3,neural_vad.min_duration_on:0.2,"
    "neural_vad.min_duration_off:{off},neural_vad.pad_offset:0.2,neural_vad.pad_onset:0.3"
)


def test_riva_neural_vad_keys_are_honoured(riva_server: ServerThread) -> None:
    long_pause = finals(riva_server.uri, custom=NEURAL_VAD.format(off=2.0))
    short_pause = finals(riva_server.uri, custom=NEURAL_VAD.format(off=0.3))
    # 2 s of silence to end an utterance keeps JFK's 11 s in one; 0.3 s splits it.
    assert len(long_pause) == 1 and len(short_pause) >= 3, (long_pause, short_pause)
    for texts in (long_pause, short_pause):
        assert word_error_rate([JFK_TEXT], [" ".join(texts)]) <= 0.25
