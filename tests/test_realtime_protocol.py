"""The sans-I/O session of NVIDIA's realtime transcription API: plain calls in, actions
out, no sockets, a fake clock. Here the whole exchange in NVIDIA's client's order, every
event exact, and the handshake's parts; the other rules are in the
``test_realtime_protocol_*`` modules."""

from __future__ import annotations

import json

from asr.events import Final, Partial, Word
from asr.options import EndpointingConfig, RecognitionOptions
from asr_server.limits import Limits
from asr_server.protocol import Close, EndAudio, ForwardAudio, StartBackend, State
from asr_server.realtime import (
    ClientSecret,
    RealtimeSession,
    server_event_adapter,
    session_object,
    token_from_subprotocols,
)

from .realtime_protocol_support import SID, TONE, append, frame, only, sent

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
