"""RIVA_* environment variables (grouped, and the flat names they replace) and option
mapping onto the Riva protos."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import riva.client.proto.riva_audio_pb2 as raudio
from pydantic import BaseModel, ValidationError

from asr import (
    AudioEncoding,
    BreakerSettings,
    EndpointingConfig,
    KeepaliveSettings,
    RecognitionOptions,
    RetrySettings,
    RivaASRClient,
    RivaSettings,
)
from asr.protocol import recognition_config, streaming_config
from asr.settings import parse_metadata, with_overrides
from asr.settings_legacy import DEPRECATED_FIELDS


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA_URI", "grpc.nvcf.nvidia.com:443")
    monkeypatch.setenv("RIVA_USE_SSL", "true")
    monkeypatch.setenv("RIVA_METADATA", "function-id=d8dd4e9b,authorization=Bearer nvapi-xyz")
    monkeypatch.setenv("RIVA_TIMEOUT", "2.5")
    settings = RivaSettings()
    assert settings.uri == "grpc.nvcf.nvidia.com:443"
    assert settings.tls
    assert settings.metadata == (("function-id", "d8dd4e9b"), ("authorization", "Bearer nvapi-xyz"))
    assert settings.timeout == 2.5


def test_metadata_forms() -> None:
    assert parse_metadata('{"Function-ID": "x"}') == (("function-id", "x"),)
    assert parse_metadata([("a", "1"), ("b", "2")]) == (("a", "1"), ("b", "2"))
    assert parse_metadata("a=1;b=2\nc=3") == (("a", "1"), ("b", "2"), ("c", "3"))
    with pytest.raises(ValueError, match="not key=value"):
        parse_metadata("no-equals-sign")


def test_client_cert_needs_key() -> None:
    with pytest.raises(ValidationError, match="together"):
        RivaSettings(ssl_client_cert="client.pem")


def test_defaults_leave_server_defaults_unset() -> None:
    config = recognition_config(RecognitionOptions())
    assert config.encoding == raudio.LINEAR_PCM
    assert config.sample_rate_hertz == 16000
    assert not config.HasField("endpointing_config")
    assert not config.speech_contexts
    assert config.model == ""


def test_options_map_onto_proto() -> None:
    options = RecognitionOptions(
        model="parakeet-1.1b-en-US-asr-streaming",
        automatic_punctuation=True,
        word_time_offsets=True,
        max_alternatives=2,
        boosted_words=("Riva", "NIM"),
        boosted_score=20.0,
        endpointing=EndpointingConfig(stop_history=800, stop_threshold=0.9),
        custom_configuration=(("enable_vad_endpointing", "true"),),
        interim_results=False,
        sample_rate_hz=48_000,
        encoding=None,
    )
    streaming = streaming_config(options)
    config = streaming.config
    assert not streaming.interim_results
    assert config.encoding == raudio.ENCODING_UNSPECIFIED
    assert config.sample_rate_hertz == 48_000
    assert config.enable_automatic_punctuation and config.enable_word_time_offsets
    assert config.max_alternatives == 2
    assert list(config.speech_contexts[0].phrases) == ["Riva", "NIM"]
    assert config.speech_contexts[0].boost == 20.0
    assert config.endpointing_config.stop_history == 800
    assert config.endpointing_config.stop_threshold == pytest.approx(0.9)
    assert config.endpointing_config.start_history == 0
    assert dict(config.custom_configuration) == {"enable_vad_endpointing": "true"}


def test_options_are_frozen_and_validated() -> None:
    options = RecognitionOptions()
    with pytest.raises(ValidationError):
        options.language_code = "de-DE"  # type: ignore[misc]  # frozen: it must fail
    with pytest.raises(ValidationError):
        EndpointingConfig(stop_threshold=1.5)
    with pytest.raises(ValidationError):
        RecognitionOptions(sample_rate_hz=0)


def test_env_example_documents_every_setting() -> None:
    text = (Path(__file__).resolve().parents[1] / ".env.example").read_text()
    documented = {
        line.lstrip("# ").split("=", 1)[0]
        for line in text.splitlines()
        if line.lstrip("# ").startswith("RIVA_")
    }
    expected = set()
    for name, field in RivaSettings.model_fields.items():
        group = field.annotation
        if isinstance(group, type) and issubclass(group, BaseModel):
            expected |= {f"RIVA_{name.upper()}__{sub.upper()}" for sub in group.model_fields}
        else:
            expected.add(f"RIVA_{name.upper()}")
    assert expected <= documented, expected - documented
    deprecated = {f"RIVA_{old.upper()}" for old in DEPRECATED_FIELDS}
    assert all(name in text for name in deprecated)
    assert "removed in the next minor release" in text


def test_grouped_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA_RETRY__ATTEMPTS", "2")
    monkeypatch.setenv("RIVA_RETRY__REPLAY_BUFFER_SECONDS", "5")
    monkeypatch.setenv("RIVA_BREAKER__FAIL_MAX", "3")
    monkeypatch.setenv("riva_keepalive__time", "12.5")  # names are case-insensitive
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new names are not deprecated
        settings = RivaSettings()
    assert settings.retry == RetrySettings(attempts=2, replay_buffer_seconds=5)
    assert settings.breaker == BreakerSettings(fail_max=3)
    assert settings.keepalive == KeepaliveSettings(time=12.5)


@pytest.mark.parametrize(("old", "group_field"), sorted(DEPRECATED_FIELDS.items()))
def test_flat_variables_still_work_with_a_warning(
    monkeypatch: pytest.MonkeyPatch, old: str, group_field: tuple[str, str]
) -> None:
    group, field = group_field
    monkeypatch.setenv(f"RIVA_{old.upper()}", "3")
    new = f"RIVA_{group.upper()}__{field.upper()}"
    with pytest.warns(DeprecationWarning, match=f"RIVA_{old.upper()} is deprecated.* use {new}"):
        settings = RivaSettings()
    assert getattr(getattr(settings, group), field) == 3


def test_new_variable_wins_over_the_flat_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RIVA_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("RIVA_RETRY_MAX_BACKOFF", "0.5")
    monkeypatch.setenv("RIVA_RETRY__ATTEMPTS", "7")
    with pytest.warns(DeprecationWarning):
        settings = RivaSettings()
    assert (settings.retry.attempts, settings.retry.max_backoff) == (7, 0.5)


def test_flat_keywords_still_work_and_beat_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RIVA_BREAKER__FAIL_MAX", "9")
    monkeypatch.setenv("RIVA_BREAKER__RESET_TIMEOUT", "4")
    with pytest.warns(DeprecationWarning, match=r"breaker=BreakerSettings\(fail_max=...\)"):
        settings = RivaSettings(breaker_fail_max=2)  # the old name
    assert settings.breaker == BreakerSettings(fail_max=2, reset_timeout=4)
    with pytest.warns(DeprecationWarning):
        validated = RivaSettings.model_validate({"retry_attempts": 1})
    assert validated.retry.attempts == 1


def test_a_flat_variable_is_logged_once_naming_its_replacement() -> None:
    # A process of its own: what an operator sees in a service's log.
    code = (
        "import logging; logging.basicConfig(format='%(levelname)s %(message)s'); "
        "from asr import RivaSettings; RivaSettings(); RivaSettings()"
    )
    env = os.environ | {"RIVA_BREAKER_RESET_TIMEOUT": "5"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    lines = [line for line in done.stderr.splitlines() if "RIVA_BREAKER_RESET_TIMEOUT" in line]
    assert lines == [
        "WARNING RIVA_BREAKER_RESET_TIMEOUT is deprecated and removed in the next minor "
        "release; use RIVA_BREAKER__RESET_TIMEOUT"
    ]


def test_overrides_are_validated_and_merge_groups() -> None:
    base = RivaSettings(uri="riva:50051", retry=RetrySettings(attempts=2, max_backoff=0.5))
    changed = with_overrides(base, uri="https://riva.example.com", retry={"attempts": 5})
    assert (changed.uri, changed.tls) == ("riva.example.com:443", True)
    assert changed.retry == RetrySettings(attempts=5, max_backoff=0.5)  # merged field by field
    assert with_overrides(base, metadata="a=1").metadata == (("a", "1"),)
    assert with_overrides(base) is base
    with pytest.raises(ValidationError):
        with_overrides(base, retry={"attempts": 0})


def test_client_keywords_override_the_settings() -> None:
    base = RivaSettings(uri="riva:50051", timeout=3, retry=RetrySettings(attempts=2))
    client = RivaASRClient(settings=base, stream_timeout=60, breaker=BreakerSettings(fail_max=1))
    assert client.settings.uri == "riva:50051"  # None keeps what the settings say
    assert (client.settings.timeout, client.settings.stream_timeout) == (3, 60)
    assert client.retry == RetrySettings(attempts=2)
    assert client.breaker.fail_max == 1
    replaced = RivaASRClient("other:1", settings=base, retry=RetrySettings(max_backoff=1))
    assert replaced.settings.uri == "other:1"
    assert replaced.retry == RetrySettings(max_backoff=1)  # a group replaces the group


@pytest.mark.parametrize(
    ("uri", "endpoint", "tls"),
    [
        ("localhost", "localhost:50051", False),  # Riva's port, as NVIDIA's scripts default
        ("riva.example.com:8001", "riva.example.com:8001", False),
        ("http://localhost", "localhost:50051", False),
        ("grpc://10.0.0.5:50051", "10.0.0.5:50051", False),
        ("https://grpc.nvcf.nvidia.com", "grpc.nvcf.nvidia.com:443", True),
        ("https://riva.example.com:8443/", "riva.example.com:8443", True),
        ("grpcs://riva.example.com", "riva.example.com:443", True),
        ("::1", "[::1]:50051", False),
        ("[::1]:50052", "[::1]:50052", False),
        ("127.0.0.1,127.0.0.2:50052", "127.0.0.1:50051,127.0.0.2:50052", False),
        ("dns:///riva-headless:50051", "dns:///riva-headless:50051", False),
    ],
)
def test_endpoints_as_people_write_them(uri: str, endpoint: str, tls: bool) -> None:
    settings = RivaSettings(uri=uri)
    assert settings.uri == endpoint
    assert settings.tls is tls


@pytest.mark.parametrize("uri", ["ftp://riva:21", "https://riva:443/v1/asr", "ws://riva:80"])
def test_endpoints_that_are_not_grpc_are_refused(uri: str) -> None:
    with pytest.raises(ValidationError, match="host:port"):
        RivaSettings(uri=uri)


@pytest.mark.parametrize(
    ("options", "per_second"),
    [
        (RecognitionOptions(), 32_000),
        (RecognitionOptions(sample_rate_hz=48_000, channels=2), 192_000),
        (RecognitionOptions(sample_rate_hz=8_000, encoding=AudioEncoding.MULAW), 8_000),
        (RecognitionOptions(sample_rate_hz=None, encoding=None), 96_000),  # rate from a header
    ],
)
def test_replay_buffer_follows_the_stream_format(
    options: RecognitionOptions, per_second: int
) -> None:
    # The client's replay buffer holds retry.replay_buffer_seconds of this stream's audio.
    assert options.max_bytes_per_second == per_second


def test_dynamo_settings_group_their_retries_too(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dynamo.runtime", reason="needs the 'dynamo' extra (ai-dynamo-runtime)")
    from asr.dynamo import DynamoASRClient, DynamoSettings

    monkeypatch.setenv("ASR_DYNAMO_RETRY__ATTEMPTS", "2")
    monkeypatch.setenv("ASR_DYNAMO_REPLAY_BUFFER_SECONDS", "5")
    with pytest.warns(DeprecationWarning, match="use ASR_DYNAMO_RETRY__REPLAY_BUFFER_SECONDS"):
        settings = DynamoSettings()
    assert settings.retry == RetrySettings(attempts=2, replay_buffer_seconds=5)
    monkeypatch.delenv("ASR_DYNAMO_REPLAY_BUFFER_SECONDS")  # the settings hold it now
    client = DynamoASRClient("asr.test.stream", settings=settings, call_timeout=2)
    assert (client.settings.endpoint, client.settings.call_timeout) == ("asr.test.stream", 2)
    assert client.retry is client.settings.retry
