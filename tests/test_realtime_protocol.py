"""The sans-I/O session of NVIDIA's realtime transcription API: plain calls in, actions
out, no sockets, a fake clock; and NVIDIA's own client (riva.client.realtime 2.27) driven
against it through an in-memory socket."""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import wave
from collections import deque
from typing import Any

import numpy as np
import pytest

from asr.errors import InvalidArgumentError, UnavailableError
from asr.events import Final, Partial, Progress, Word
from asr.options import EndpointingConfig, RecognitionOptions
from asr_server.limits import Limits
from asr_server.protocol import (
    Close,
    EndAudio,
    EndRecording,
    FinishUtterance,
    ForwardAudio,
    StartBackend,
    StartRecording,
    State,
)
from asr_server.realtime import (
    Action,
    ClientSecret,
    RealtimeSession,
    Send,
    server_event_adapter,
    session_object,
    token_from_subprotocols,
)
from asr_server.recordings.policy import RecordingPolicy

SID = "sess_t"
TONE = (np.sin(np.arange(1600) / 5.0) * 8000).astype("<i2").tobytes()
"""100 ms of 16 kHz PCM16 (NVIDIA's client's chunk: 1600 frames)."""


def make(**kwargs: Any) -> RealtimeSession:
    limits = kwargs.pop("limits", Limits())
    session = RealtimeSession(session_id=SID, limits=limits, now=0.0, **kwargs)
    session.open()
    return session


def frame(kind: str, **fields: Any) -> str:
    return json.dumps({"type": kind, **fields})


def append(audio: bytes, *, force_eou: bool = False) -> str:
    fields: dict[str, Any] = {"audio": base64.b64encode(audio).decode()}
    if force_eou:
        fields["runtime_config"] = {"force_eou": "true"}  # as NVIDIA's client sends it
    return frame("input_audio_buffer.append", **fields)


def sent(actions: list[Action]) -> list[dict[str, Any]]:
    """The JSON of every event the actions send, as the client receives it."""
    return [json.loads(a.event.model_dump_json()) for a in actions if isinstance(a, Send)]


def only(actions: list[Action]) -> dict[str, Any]:
    [event] = sent(actions)
    return event


def error(actions: list[Action]) -> dict[str, Any]:
    event = only(actions)
    assert event["type"] == "error"
    assert set(event) == {"type", "event_id", "error"}
    detail: dict[str, Any] = event["error"]
    return detail


def audio_of(actions: list[Action]) -> bytes:
    return b"".join(a.pcm16 for a in actions if isinstance(a, ForwardAudio))


def wav_bytes(pcm: bytes, rate: int, channels: int = 1, width: int = 2) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(pcm)
    return out.getvalue()


# --- the exchange in NVIDIA's client's order ---------------------------------------------


def test_happy_path_exact_events() -> None:
    session = RealtimeSession(session_id=SID, limits=Limits(), now=0.0)
    assert sent(session.open()) == [
        {
            "event_id": "event_t_0",
            "type": "conversation.created",
            "conversation": {"id": "conv_t", "object": "realtime.conversation"},
        }
    ]
    # NVIDIA's client sends back the POST answer with its overrides (client_secret too).
    body = session_object(SID, client_secret=ClientSecret(value="tok", expires_at=9))
    update = body.model_dump(mode="json")
    update["input_audio_format"] = "pcm16"
    update["input_audio_transcription"]["language"] = "en-GB"
    update["recognition_config"] |= {
        "max_alternatives": 1,
        "enable_automatic_punctuation": True,
        "enable_word_time_offsets": True,
        "enable_profanity_filter": False,
        "enable_verbatim_transcripts": True,
        "custom_configuration": "neural_vad.onset:0.5,beam_size:4",
    }
    update["word_boosting"] = {
        "enable_word_boosting": True,
        "word_boosting_list": [{"phrases": ["Riva", "NIM"], "boost": 20.0}],
    }
    update["endpointing_config"] = {"stop_history": 800, "stop_threshold": 0.3}
    updated = only(session.receive_text(frame("transcription_session.update", session=update), 0.1))
    assert updated == {
        "event_id": "event_t_1",
        "type": "transcription_session.updated",
        "session": {
            "id": SID,
            "object": "realtime.transcription_session",
            "modalities": ["text"],
            "input_audio_format": "pcm16",
            "input_audio_transcription": {"language": "en-GB", "model": None, "prompt": ""},
            "input_audio_params": {"sample_rate_hz": 16000, "num_channels": 1},
            "recognition_config": {
                "max_alternatives": 1,
                "enable_automatic_punctuation": True,
                "enable_word_time_offsets": True,
                "enable_profanity_filter": False,
                "enable_verbatim_transcripts": True,
                "custom_configuration": {"neural_vad.onset": "0.5", "beam_size": "4"},
            },
            "speaker_diarization": {"enable_speaker_diarization": False, "max_speaker_count": 8},
            "word_boosting": {
                "enable_word_boosting": True,
                "word_boosting_list": [{"phrases": ["Riva", "NIM"], "boost": 20.0}],
            },
            "endpointing_config": {
                "start_history": None,
                "start_threshold": None,
                "stop_history": 800,
                "stop_threshold": 0.3,
                "stop_history_eou": None,
                "stop_threshold_eou": None,
            },
            "client_secret": None,  # never echoed
        },
    }
    first = session.receive_text(append(TONE), 0.2)
    assert first == [
        StartBackend(
            RecognitionOptions(
                language_code="en-GB",
                max_alternatives=1,
                automatic_punctuation=True,
                word_time_offsets=True,
                profanity_filter=False,
                verbatim_transcripts=True,
                boosted_words=("Riva", "NIM"),
                boosted_score=20.0,
                endpointing=EndpointingConfig(stop_history=800, stop_threshold=0.3),
                custom_configuration=(("neural_vad.onset", "0.5"), ("beam_size", "4")),
            )
        )
    ]
    commit = session.receive_text(frame("input_audio_buffer.commit"), 0.2)
    assert commit[0] == ForwardAudio(TONE)
    assert sent(commit) == [
        {
            "event_id": "event_t_2",
            "type": "input_audio_buffer.committed",
            "previous_item_id": None,
            "item_id": "item_t_0",
        }
    ]
    partial = session.backend_event(Partial(text="hello"), offset=0.0, forced=False, now=0.3)
    assert sent(partial) == [
        {
            "event_id": "event_t_3",
            "type": "conversation.item.input_audio_transcription.delta",
            "item_id": "item_t_0",
            "content_index": 0,
            "delta": "hello",
        }
    ]
    final = Final(
        text="hello world",
        words=(Word(word="hello", start_ms=0, end_ms=40, confidence=0.9),),
        audio_processed=0.1,
    )
    assert sent(session.backend_event(final, offset=0.0, forced=False, now=0.4)) == [
        {
            "event_id": "event_t_4",
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_t_0",
            "content_index": 0,
            "transcript": "hello world",
            "is_last_result": False,
            "words_info": {
                "words": [
                    {
                        "word": "hello",
                        "start_time": 0,
                        "end_time": 40,
                        "confidence": 0.9,
                        "speaker_tag": 0,
                    }
                ]
            },
        }
    ]
    session.receive_text(append(TONE), 0.5)
    assert only(session.receive_text(frame("input_audio_buffer.commit"), 0.5)) == {
        "event_id": "event_t_5",
        "type": "input_audio_buffer.committed",
        "previous_item_id": "item_t_0",
        "item_id": "item_t_1",
    }
    assert session.receive_text(frame("input_audio_buffer.done"), 0.6) == [EndAudio()]
    assert session.state is State.DRAINING
    # After done each completed waits until Riva says whether another follows.
    assert session.backend_event(Final(text="bye"), offset=0.0, forced=True, now=0.7) == []
    assert session.backend_stream_ended(forced=True, now=0.7) == []
    end = session.backend_done(0.8)
    assert sent(end) == [
        {
            "event_id": "event_t_6",
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_t_1",
            "content_index": 0,
            "transcript": "bye",
            "is_last_result": True,
            "words_info": {"words": []},
        }
    ]
    assert end[-1] == Close(1000, "session ended")
    assert session.deadline() is None  # closed: nothing more to wait for
    assert session.receive_text(append(TONE), 0.9) == []
    assert session.transcript == "hello world bye"
    for event in sent(end):
        server_event_adapter.validate_python(event)


class _MemorySocket:
    """What RealtimeClientASR uses of a websockets connection, wired to a session; Riva
    is scripted: ``results`` are delivered when the audio ends."""

    def __init__(self, session: RealtimeSession, results: list[Partial | Final]) -> None:
        self.session = session
        self.results = results
        self.inbox: deque[str] = deque()
        self.sent: list[dict[str, Any]] = []
        self.actions: list[Action] = []
        self.now = 0.0
        self.closed: Close | None = None
        self._apply(session.open())

    def _apply(self, actions: list[Action]) -> None:
        for action in actions:
            self.actions.append(action)
            if isinstance(action, Send):
                self.inbox.append(action.event.model_dump_json())
            elif isinstance(action, Close):
                self.closed = action
            elif isinstance(action, EndAudio):
                for result in self.results:
                    self._apply(self.session.backend_event(result, offset=0, forced=True, now=1))
                self._apply(self.session.backend_done(self.now))
            elif isinstance(action, EndRecording):
                ended = self.session.recording_ended(
                    recording_id="rec_t", enhancement_job_id=None, now=self.now
                )
                self._apply(ended)

    async def send(self, text: str) -> None:
        self.sent.append(json.loads(text))
        self.now += 0.01
        self._apply(self.session.receive_text(text, self.now))

    async def recv(self) -> str:
        if not self.inbox:
            raise AssertionError("the client waits for an event the session does not send")
        return self.inbox.popleft()

    async def close(self) -> None:
        pass

    def backend_actions(self) -> list[str]:
        """The kinds of the actions so far that are not for the client's socket."""
        return [type(a).__name__ for a in self.actions if not isinstance(a, Send | Close)]


def nvidia_client(sock: _MemorySocket, **overrides: Any) -> Any:
    from riva.client.realtime import RealtimeClientASR

    args = argparse.Namespace(
        mic=True,
        language_code="en-US",
        model_name="",
        prompt="",
        sample_rate_hz=16000,
        num_channels=1,
        max_alternatives=1,
        automatic_punctuation=True,
        word_time_offsets=True,
        profanity_filter=False,
        no_verbatim_transcripts=False,
        speaker_diarization=False,
        boosted_lm_words=["Riva"],
        boosted_lm_score=4.0,
        start_history=-1,
        start_threshold=-1.0,
        stop_history=-1,
        stop_threshold=-1.0,
        stop_history_eou=-1,
        stop_threshold_eou=-1.0,
        custom_configuration="beam_size:4",
    )
    vars(args).update(overrides)
    client = RealtimeClientASR(args)
    client.session_config = session_object(
        SID, client_secret=ClientSecret(value="tok", expires_at=9)
    ).model_dump(mode="json")
    client.websocket = sock
    return client


async def _run_nvidia(client: Any, chunks: list[bytes], force_eou: list[bool] | None) -> None:
    await client._initialize_session()
    await client.send_audio_chunks(chunks, force_eou)
    await client.receive_responses()


def test_nvidia_client_runs_unchanged() -> None:
    session = RealtimeSession(session_id=SID, limits=Limits(), now=0.0)
    results: list[Partial | Final] = [Partial(text="riva"), Final(text="Riva is here.")]
    sock = _MemorySocket(session, results)
    client = nvidia_client(sock)
    asyncio.run(_run_nvidia(client, [TONE, TONE, TONE], [False, True, False]))
    assert client.is_config_updated
    assert client.final_transcript == "Riva is here."
    assert [m["type"] for m in sock.sent] == [
        "transcription_session.update",
        *["input_audio_buffer.append", "input_audio_buffer.commit"] * 3,
        "input_audio_buffer.done",
    ]
    assert not [e for e in map(json.loads, sock.inbox) if e["type"] == "error"]
    assert sock.closed == Close(1000, "session ended")
    [start] = [a for a in sock.actions if isinstance(a, StartBackend)]
    assert start.options.boosted_words == ("Riva",)
    assert start.options.automatic_punctuation is True
    assert start.options.verbatim_transcripts is True
    assert start.options.custom_configuration == (("beam_size", "4"),)
    # force_eou on the second chunk: Riva's forced end after its audio, the call goes on.
    assert sock.backend_actions() == [
        "StartBackend",
        "ForwardAudio",
        "ForwardAudio",
        "FinishUtterance",
        "ForwardAudio",
        "EndAudio",
    ]


def test_nvidia_client_file_mode_sends_a_wav_file() -> None:
    samples = (np.sin(np.arange(8000) / 3.0) * 5000).astype("<i2").tobytes()  # 1 s, 8 kHz
    data = wav_bytes(samples, 8000)
    chunks = [data[i : i + 3200] for i in range(0, len(data), 3200)]  # header in the first
    session = RealtimeSession(session_id=SID, limits=Limits(), now=0.0)
    sock = _MemorySocket(session, [Final(text="tone")])
    client = nvidia_client(sock, mic=False, sample_rate_hz=8000)
    asyncio.run(_run_nvidia(client, chunks, None))
    assert sock.sent[0]["session"]["input_audio_format"] == "none"
    assert client.final_transcript == "tone"
    assert session.audio_seconds == pytest.approx(1.0)
    forwarded = audio_of(sock.actions)
    assert abs(len(forwarded) - 32_000) <= 64  # resampled to 16 kHz, header left out


def test_nvidia_client_is_recorded_unchanged_where_recording_is_always_on() -> None:
    session = RealtimeSession(
        session_id=SID, limits=Limits(), now=0.0, recording=RecordingPolicy.ALWAYS
    )
    sock = _MemorySocket(session, [Final(text="Riva is here.")])
    client = nvidia_client(sock)
    asyncio.run(_run_nvidia(client, [TONE, TONE], None))
    assert client.final_transcript == "Riva is here."
    assert StartRecording(enhance_on_end=False) in sock.actions
    assert sock.backend_actions() == [
        "StartRecording",
        "StartBackend",
        *["ForwardAudio"] * 2,
        "EndAudio",
        "EndRecording",
    ]
    # The client stopped reading at is_last_result; the ids came after it, before the close.
    assert [json.loads(e)["type"] for e in sock.inbox] == ["transcription_session.recorded"]
    assert sock.closed == Close(1000, "session ended")


# --- recording (issue 15) -----------------------------------------------------------------


def test_recorded_session_tells_its_ids_after_the_last_result() -> None:
    session = make(recording=RecordingPolicy.OPTIONAL, enhance_on_end=True)
    assert session.recording.record and session.recording.enhance_on_end
    first = session.receive_text(append(TONE), 0)
    assert [type(a) for a in first] == [StartRecording, StartBackend]
    assert first[0] == StartRecording(enhance_on_end=True)
    assert session.receive_text(append(TONE), 0) == []  # once
    session.receive_text(frame("input_audio_buffer.done"), 1)
    session.backend_event(Final(text="kept"), offset=0, forced=True, now=2)
    end = session.backend_done(2)
    assert only(end)["is_last_result"] is True  # every final out before the recording closes
    assert end[-1] == EndRecording()
    assert session.state is State.DRAINING
    assert session.backend_deadline() is None  # Riva owes nothing more
    assert session.recording_failed(2.5) == []  # no warning event in this API
    closed = session.recording_ended(recording_id="rec_1", enhancement_job_id="job_1", now=3)
    assert only(closed) == {
        "event_id": "event_t_2",
        "type": "transcription_session.recorded",
        "recording_id": "rec_1",
        "enhancement_job_id": "job_1",
    }
    server_event_adapter.validate_python(only(closed))
    assert closed[-1] == Close(1000, "session ended")
    assert session.receive_text(append(TONE), 4) == []  # closed


def test_recording_that_kept_nothing_says_so_and_a_shutdown_closes_going_away() -> None:
    session = make(recording=RecordingPolicy.ALWAYS, record=False)  # cannot opt out
    session.receive_text(append(TONE), 0)
    assert session.shutdown(1, timeout=5)[-1] == EndAudio()
    assert session.backend_done(2)[-1] == EndRecording()
    closed = session.recording_ended(recording_id=None, enhancement_job_id=None, now=2)
    assert only(closed)["recording_id"] is None
    assert closed[-1] == Close(1001, "server shutting down")


def test_unrecorded_sessions_start_and_end_no_recording() -> None:
    for session in (make(recording=RecordingPolicy.OPTIONAL), make(record=False)):
        assert not session.recording.record
        actions = session.receive_text(append(TONE), 0)
        assert [type(a) for a in actions] == [StartBackend]
        session.receive_text(frame("input_audio_buffer.done"), 1)
        assert session.backend_done(2)[-1] == Close(1000, "session ended")
    # Done before any audio: nothing was recorded, nothing to end.
    empty = make(recording=RecordingPolicy.ALWAYS)
    assert empty.receive_text(frame("input_audio_buffer.done"), 1)[-1] == Close(
        1000, "session ended"
    )


@pytest.mark.parametrize(
    ("record", "enhance_on_end", "option"),
    [(True, None, "record"), (None, True, "enhance_on_end")],
)
def test_asking_to_record_where_recording_is_off_is_refused(
    record: bool | None, enhance_on_end: bool | None, option: str
) -> None:
    session = RealtimeSession(
        session_id=SID, limits=Limits(), now=0.0, record=record, enhance_on_end=enhance_on_end
    )
    actions = session.open()
    assert error(actions) == {
        "type": "invalid_request_error",
        "code": "recording_unavailable",
        "message": f"{option} is not available: recording is off on this server",
        "param": None,
        "event_id": None,
        "retryable": False,
    }
    assert actions[-1] == Close(4002, "recording_unavailable")
    assert session.state is State.CLOSED


# --- bad input: an error event, the event dropped, the session goes on -------------------


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


# --- commit, clear, done ------------------------------------------------------------------


def test_clear_drops_uncommitted_audio_and_its_cut() -> None:
    session = make()
    session.receive_text(append(TONE, force_eou=True), 1)
    assert only(session.receive_text(frame("input_audio_buffer.clear"), 1)) == {
        "event_id": "event_t_1",
        "type": "input_audio_buffer.cleared",
    }
    commit = session.receive_text(frame("input_audio_buffer.commit"), 1)
    assert [a for a in commit if not isinstance(a, Send)] == []


def test_force_eou_cuts_after_its_chunk_only_when_there_is_audio() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    session.receive_text(append(TONE, force_eou=True), 1)
    session.receive_text(append(TONE), 1)
    commit = session.receive_text(frame("input_audio_buffer.commit"), 1)
    assert commit[:3] == [ForwardAudio(TONE + TONE), FinishUtterance(), ForwardAudio(TONE)]
    session.receive_text(append(b"", force_eou=True), 2)  # cuts after the last chunk
    session.receive_text(append(b"", force_eou=True), 2)  # no audio since: no cut
    again = session.receive_text(frame("input_audio_buffer.commit"), 2)
    assert [a for a in again if not isinstance(a, Send)] == [FinishUtterance()]


def test_done_commits_the_rest_and_ends_the_audio() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    assert session.receive_text(frame("input_audio_buffer.done"), 1) == [
        ForwardAudio(TONE),
        EndAudio(),
    ]
    late = error(session.receive_text(append(TONE), 1.1))
    assert late["code"] == "after_done"
    assert (
        late["message"] == "'input_audio_buffer.append' after input_audio_buffer.done was ignored"
    )


def test_done_without_audio_ends_with_an_empty_last_result() -> None:
    session = make()
    actions = session.receive_text(frame("input_audio_buffer.done"), 1)
    assert sent(actions) == [
        {
            "event_id": "event_t_1",
            "type": "conversation.item.input_audio_transcription.completed",
            "item_id": "item_t_0",
            "content_index": 0,
            "transcript": "",
            "is_last_result": True,
            "words_info": {"words": []},
        }
    ]
    assert actions[-1] == Close(1000, "session ended")


def test_last_result_repeats_the_last_completed_when_none_follows_done() -> None:
    session = make()
    session.receive_text(append(TONE), 1)
    session.backend_event(Final(text="one"), offset=0, forced=False, now=1)
    session.receive_text(frame("input_audio_buffer.done"), 2)
    session.backend_event(Final(text=""), offset=0, forced=True, now=2)  # silence
    last = only(session.backend_done(3))
    assert (last["item_id"], last["transcript"], last["is_last_result"]) == (
        "item_t_0",
        "one",
        True,
    )


# --- transcripts: items, ordering, ids ----------------------------------------------------


def test_items_are_stable_per_utterance_and_in_order() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    script: list[Partial | Final | Progress] = [
        Partial(text="a"),
        Partial(text="a"),  # repeated hypothesis: no event
        Progress(audio_processed=0.5),
        Partial(text="a b"),
        Final(text="a b c"),
        Final(text=""),  # silence: no item
        Partial(text="d"),
        Final(text="d e"),
    ]
    events = [
        e for r in script for e in sent(session.backend_event(r, offset=0, forced=False, now=1))
    ]
    assert [
        (e["type"].rsplit(".", 1)[1], e["item_id"], e.get("delta", e.get("transcript")))
        for e in events
    ] == [
        ("delta", "item_t_0", "a"),
        ("delta", "item_t_0", "a b"),
        ("completed", "item_t_0", "a b c"),
        ("delta", "item_t_1", "d"),
        ("completed", "item_t_1", "d e"),
    ]
    assert [e["event_id"] for e in events] == [f"event_t_{n}" for n in range(1, 6)]


def test_after_done_a_held_completed_goes_before_the_next_delta() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    session.receive_text(frame("input_audio_buffer.done"), 0)
    assert session.backend_event(Final(text="one"), offset=0, forced=True, now=1) == []
    following = sent(session.backend_event(Partial(text="two"), offset=0, forced=True, now=1))
    assert [(e["type"].rsplit(".", 1)[1], e["item_id"]) for e in following] == [
        ("completed", "item_t_0"),
        ("delta", "item_t_1"),
    ]
    assert following[0]["is_last_result"] is False
    session.backend_event(Final(text="two"), offset=0, forced=True, now=1)
    assert only(session.backend_done(2))["is_last_result"] is True


def test_word_times_count_from_the_session_start() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    final = Final(text="x", words=(Word(word="x", start_ms=10, end_ms=20),))
    [event] = sent(session.backend_event(final, offset=2.5, forced=False, now=1))
    assert event["words_info"]["words"] == [
        {"word": "x", "start_time": 2510, "end_time": 2520, "confidence": 0.0, "speaker_tag": 0}
    ]


# --- backend failures and the clock -------------------------------------------------------


def test_backend_failure_is_an_error_and_a_close() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    actions = session.backend_failed(UnavailableError("ipv4:10.0.0.5:50051 refused"), 1)
    assert only(actions) == {
        "event_id": "event_t_1",
        "type": "error",
        "error": {
            "type": "server_error",
            "code": "backend_unavailable",
            "message": "the speech backend is unavailable; try again",
            "param": None,
            "event_id": None,
            "retryable": True,
        },
    }
    assert actions[-1] == Close(4007, "backend_unavailable")
    assert session.receive_text(append(TONE), 2) == []
    refused = make().backend_failed(InvalidArgumentError("bad language"), 1)
    assert error(refused)["code"] == "invalid_config"
    assert refused[-1] == Close(4002, "invalid_config")


def test_idle_timeout_and_stalled_backend() -> None:
    session = make(limits=Limits(idle_timeout_seconds=5, final_timeout_seconds=3))
    assert session.deadline() == 5
    assert session.tick(4.9) == []
    idle = session.tick(5.0)
    assert error(idle)["code"] == "idle_timeout"
    assert idle[-1] == Close(4009, "idle_timeout")

    session = make(limits=Limits(final_timeout_seconds=3))
    session.receive_text(append(TONE), 1)
    session.receive_text(frame("input_audio_buffer.done"), 1)
    assert session.backend_deadline() == 4
    session.backend_event(Progress(audio_processed=0.05), offset=0, forced=True, now=2)
    assert session.backend_deadline() == 5  # progress restarts the wait
    stalled = session.tick(5)
    assert error(stalled)["code"] == "backend_unavailable"


def test_backlog_is_audio_riva_has_not_processed() -> None:
    session = make()
    session.receive_text(append(TONE * 10), 0)
    session.receive_text(frame("input_audio_buffer.commit"), 0)
    assert session.backlog_seconds == pytest.approx(1.0)
    session.backend_event(Progress(audio_processed=0.75), offset=0, forced=False, now=1)
    assert session.backlog_seconds == pytest.approx(0.25)


def test_shutdown_drains_and_closes_going_away() -> None:
    session = make()
    session.receive_text(append(TONE), 0)
    assert session.shutdown(1, timeout=5) == [ForwardAudio(TONE), EndAudio()]
    session.backend_event(Final(text="end"), offset=0, forced=True, now=2)
    actions = session.backend_done(2)
    assert only(actions)["transcript"] == "end"
    assert actions[-1] == Close(1001, "server shutting down")


# --- the handshake ------------------------------------------------------------------------


def test_token_from_subprotocols() -> None:
    assert token_from_subprotocols(["realtime", "realtime-token.v1.a.b"]) == "v1.a.b"
    assert token_from_subprotocols(["realtime"]) is None
    assert token_from_subprotocols(["realtime", "realtime-token."]) is None


def test_session_object_is_the_post_answer() -> None:
    body = session_object("sess_1", client_secret=ClientSecret(value="v1.x.y", expires_at=60))
    data = json.loads(body.model_dump_json())
    assert data["client_secret"] == {"value": "v1.x.y", "expires_at": 60}
    assert (data["id"], data["object"], data["modalities"]) == (
        "sess_1",
        "realtime.transcription_session",
        ["text"],
    )
    assert data["input_audio_format"] == "pcm16"
    assert session_object("sess_1", client_secret=None).client_secret is None
