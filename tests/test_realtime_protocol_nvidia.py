"""NVIDIA's own client (riva.client.realtime 2.27) driven unchanged against the sans-I/O
realtime session through an in-memory socket, Riva scripted."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections import deque
from typing import Any

import numpy as np
import pytest

from asr.events import Final, Partial
from asr_server.limits import Limits
from asr_server.protocol import Close, EndAudio, EndRecording, StartBackend, StartRecording
from asr_server.realtime import Action, ClientSecret, RealtimeSession, Send, session_object
from asr_server.recordings.policy import RecordingPolicy

from .realtime_protocol_support import SID, TONE, audio_of, wav_bytes


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
