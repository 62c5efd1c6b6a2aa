"""Bad input to the sans-I/O realtime session: an error event, the event dropped, the
session goes on; the session settings it refuses, and the audio formats it takes."""

from __future__ import annotations

from typing import Any

import pytest

from asr.options import EndpointingConfig
from asr_server.limits import Limits
from asr_server.protocol import StartBackend, State
from asr_server.realtime import Send

from .realtime_protocol_support import TONE, append, audio_of, error, frame, make, only, wav_bytes


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        ("{not json", "invalid_json", "text frame is not JSON: Expecting property name"),
        ("[1, 2]", "invalid_json", "text frame is not a JSON object"),
        ('{"audio": "AAAA"}', "unknown_event_type", "event has no 'type'; expected one of"),
        (
            '{"type": "response.create"}',
            "unknown_event_type",
            "event has an unknown type 'response.create'; expected one of "
            "input_audio_buffer.append, input_audio_buffer.clear, input_audio_buffer.commit, "
            "input_audio_buffer.done, transcription_session.update",
        ),
        (
            '{"type": "input_audio_buffer.append", "audio": "A@A="}',
            "invalid_event",
            "invalid 'input_audio_buffer.append': audio: not valid base64",
        ),
        (
            '{"type": "input_audio_buffer.append"}',
            "invalid_event",
            "invalid 'input_audio_buffer.append': audio: Field required",
        ),
        (
            '{"type": "input_audio_buffer.commit", "item_id": "x"}',
            "invalid_event",
            "invalid 'input_audio_buffer.commit': item_id: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_frames_are_answered_with_errors(text: str, code: str, message: str) -> None:
    session = make()
    detail = error(session.receive_text(text, 1.0))
    assert detail["type"] == "invalid_request_error"
    assert detail["code"] == code
    assert detail["message"].startswith(message)
    assert detail["retryable"] is False
    assert session.state is State.OPEN


def test_error_names_the_client_event_and_field() -> None:
    session = make()
    text = frame("input_audio_buffer.append", event_id="evt_9", audio="%%")
    assert only(session.receive_text(text, 1.0)) == {
        "event_id": "event_t_1",
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "code": "invalid_event",
            "message": "invalid 'input_audio_buffer.append': audio: not valid base64 "
            "(Only base64 data is allowed)",
            "param": "audio",
            "event_id": "evt_9",
            "retryable": False,
        },
    }


def test_odd_pcm16_byte_count_is_refused_and_the_stream_goes_on() -> None:
    session = make()
    detail = error(session.receive_text(append(b"\x01\x02\x03"), 1.0))
    assert detail["code"] == "invalid_audio"
    assert detail["message"] == (
        "audio is not valid 'pcm16': pcm16 audio must be whole 2-byte samples, got 3 bytes"
    )
    assert isinstance(session.receive_text(append(TONE), 1.1)[0], StartBackend)
    assert audio_of(session.receive_text(frame("input_audio_buffer.commit"), 1.2)) == TONE


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (
            {"input_audio_format": "g711_ulaw"},
            "session.input_audio_format: Input should be 'pcm16' or 'none'",
        ),
        (
            {"input_audio_params": {"num_channels": 2}},
            "session: input_audio_params.num_channels 2 is not supported: send mono audio",
        ),
        (
            {"input_audio_params": {"sample_rate_hz": 4000}},
            "session.input_audio_params.sample_rate_hz: Input should be greater than or "
            "equal to 8000",
        ),
        (
            {"speaker_diarization": {"enable_speaker_diarization": True}},
            "session: speaker_diarization is not supported by this gateway",
        ),
        ({"languages": "de"}, "session.languages: Extra inputs are not permitted"),
        (
            {"endpointing_config": {"stop_history": -1}},
            "session.endpointing_config.stop_history: Input should be greater than or equal to 0",
        ),
        (
            {"recognition_config": {"custom_configuration": "beam_size=4"}},
            "session.recognition_config.custom_configuration: custom_configuration pair "
            "'beam_size=4' is not 'key:value'",
        ),
        (
            {
                "word_boosting": {
                    "enable_word_boosting": True,
                    "word_boosting_list": [
                        {"phrases": ["a"], "boost": 1.0},
                        {"phrases": ["b"], "boost": 2.0},
                    ],
                }
            },
            "session: word_boosting_list entries with different boost values",
        ),
    ],
)
def test_unsupported_settings_are_refused(patch: dict[str, Any], message: str) -> None:
    session = make()
    before = session.settings
    detail = error(session.receive_text(frame("transcription_session.update", session=patch), 1))
    assert detail["code"] == "invalid_event"
    assert detail["message"].startswith(f"invalid 'transcription_session.update': {message}")
    assert session.settings == before
    assert session.state is State.OPEN


def test_partial_update_keeps_the_rest_and_zero_endpointing_is_riva_default() -> None:
    session = make()
    patch = {
        "input_audio_params": {"sample_rate_hz": 48000},
        "endpointing_config": {"start_history": 0, "stop_threshold": 0.5},
        "turn_detection": None,  # OpenAI's: accepted, not applied
        "custom_configuration": {"beam_size": "2"},  # where clients before 2.27 put it
    }
    session.receive_text(frame("transcription_session.update", session=patch), 1)
    assert session.settings.input_audio_params.num_channels == 1
    assert session.settings.input_audio_transcription.language == "en-US"
    options = session.settings.recognition_options()
    assert options.endpointing == EndpointingConfig(stop_threshold=0.5)
    assert options.custom_configuration == (("beam_size", "2"),)
    assert options.sample_rate_hz == 16000  # 48 kHz is resampled for Riva
    session.receive_text(append(b"\0\0" * 4800), 1.1)  # 100 ms at 48 kHz
    assert session.audio_seconds == pytest.approx(0.1)


def test_update_after_audio_is_refused() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    detail = error(session.receive_text(frame("transcription_session.update", session={}), 1))
    assert detail["code"] == "update_after_audio"


def test_audio_before_update_is_taken_unless_required() -> None:
    assert isinstance(make().receive_text(append(TONE), 1)[0], StartBackend)
    session = make(require_update=True)
    assert error(session.receive_text(append(TONE), 1))["code"] == "update_required"
    session.receive_text(frame("transcription_session.update", session={}), 1)
    assert isinstance(session.receive_text(append(TONE), 1)[0], StartBackend)


def test_oversize_frame_and_full_buffer_are_refused() -> None:
    session = make(limits=Limits(max_frame_bytes=4096), max_buffer_seconds=0.15)
    detail = error(session.receive_text(append(b"\0\0" * 2000), 1))
    assert detail["code"] == "frame_too_large"
    assert detail["message"].startswith("text frame is larger than 4096 bytes")
    session.receive_text(append(b"\0\0" * 1000), 1)
    session.receive_text(append(b"\0\0" * 1000), 1)
    full = error(session.receive_text(append(b"\0\0" * 1000), 1))  # 0.1875 s > 0.15 s
    assert full["code"] == "buffer_full"
    assert audio_of(session.receive_text(frame("input_audio_buffer.commit"), 1)) == (b"\0\0" * 2000)
    session.receive_text(append(b"\0\0" * 1000), 1)  # room again after the commit
    assert session.state is State.OPEN


def test_binary_frames_are_refused() -> None:
    session = make()
    assert error(session.receive_binary(TONE, 1))["code"] == "unsupported_frame"
    assert session.state is State.OPEN


def test_none_format_takes_only_pcm16_mono_wav() -> None:
    session = make()
    session.receive_text(
        frame("transcription_session.update", session={"input_audio_format": "none"}), 0
    )
    stereo = wav_bytes(b"\0\0\0\0" * 100, 16000, channels=2)
    detail = error(session.receive_text(append(stereo), 1))
    assert detail["message"] == (
        "audio is not valid 'none': the WAV file holds 2-channel 16-bit audio of format 1; "
        "send PCM16 mono (format 1)"
    )
    assert error(session.receive_text(append(b"fLaC" + b"\0" * 40), 1))["message"] == (
        "audio is not valid 'none': input_audio_format 'none' takes a WAV file (RIFF/WAVE, "
        "PCM16 mono); for raw samples use 'pcm16'"
    )


def test_wav_header_split_across_appends_and_trailing_chunks() -> None:
    data = wav_bytes(TONE, 16000) + b"LIST\x04\0\0\0abcd"  # a chunk after the samples
    session = make()
    session.receive_text(
        frame("transcription_session.update", session={"input_audio_format": "none"}), 0
    )
    for piece in (data[:20], data[20:45], data[45:]):  # header split, a sample split
        assert not [a for a in session.receive_text(append(piece), 1) if isinstance(a, Send)]
    assert audio_of(session.receive_text(frame("input_audio_buffer.commit"), 1)) == TONE
