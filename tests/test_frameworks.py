"""Voice-agent frameworks against the real embedded server, with their own defaults.

LiveKit Agents' NVIDIA plugin (``livekit-plugins-nvidia``) is driven the way an agent
drives it, ``STT.stream()`` fed ``rtc.AudioFrame``s, with only the server address changed
and TLS off (its defaults point at NVIDIA's cloud). Everything else stays as the plugin
sends it: the model ``parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer``, the
``function-id`` metadata, word time offsets, punctuation and interim results.

The plugin is a development dependency (``asr[dev]``), pinned in ``constraints.txt``.
pipecat's NVIDIA STT service was tried the same way (it transcribes JFK with its defaults,
``stop_history`` 320 included) but is not installed: its pins clash with this project's.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import livekit.agents.stt as lk_stt
import livekit.plugins.nvidia as nvidia
import pytest
from livekit import rtc

from asr.audio import chunk_bytes, load_pcm16
from asr.wer import normalize, word_error_rate

from .conftest import SPEECH, ServerThread, scaled

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
RATE = 16_000
FRAME_MS = 20
# Four times real time: the server still endpoints on the trailing silence.
FRAME_INTERVAL = FRAME_MS / 1000 / 4


async def run_stream(stt: Any, pcm: bytes) -> list[Any]:
    """Every speech event of one ``stt.stream()`` fed ``pcm`` in 20 ms frames, then 1 s
    of silence (the agent's audio keeps flowing after the speaker stops)."""
    stream = stt.stream()
    events: list[Any] = []

    async def read() -> None:
        async for event in stream:
            events.append(event)

    reader = asyncio.create_task(read())
    try:
        silence = b"\0" * (RATE * 2 * FRAME_MS // 1000)
        frames = [*chunk_bytes(pcm, FRAME_MS), *[silence] * (1000 // FRAME_MS)]
        for data in frames:
            stream.push_frame(
                rtc.AudioFrame(
                    data=data, sample_rate=RATE, num_channels=1, samples_per_channel=len(data) // 2
                )
            )
            await asyncio.sleep(FRAME_INTERVAL)
        stream.end_input()
        await asyncio.wait_for(reader, scaled(60))
    finally:
        reader.cancel()
        await stream.aclose()
    return events


def thread_errors(caplog: pytest.LogCaptureFixture) -> str:
    """What the plugin logged from its recognition thread (it logs gRPC errors there and
    ends the stream without raising them)."""
    return "\n".join(
        f"{r.getMessage()}: {r.exc_info[1] if r.exc_info else ''}"
        for r in caplog.records
        if r.name.startswith("livekit.plugins.nvidia") and r.levelno >= logging.ERROR
    )


async def test_livekit_nvidia_stt_defaults_transcribe_jfk(
    riva_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    stt = nvidia.STT(server=riva_server.uri, use_ssl=False)
    events = await run_stream(stt, load_pcm16(SPEECH / "jfk" / "jfk.wav"))

    finals = [e for e in events if e.type == lk_stt.SpeechEventType.FINAL_TRANSCRIPT]
    text = " ".join(e.alternatives[0].text for e in finals)
    assert finals, f"no final transcript; the plugin logged: {thread_errors(caplog) or 'nothing'}"
    assert word_error_rate([JFK], [text]) <= 0.25, text
    assert "ask not what your country can do for you" in normalize(text), text

    # The plugin turns the first word's start_time and the last word's end_time (Riva's
    # milliseconds) into seconds: the utterances must lie inside the 11 s clip, in order.
    spans = [(e.alternatives[0].start_time, e.alternatives[0].end_time) for e in finals]
    assert all(0 <= start < end <= 12 for start, end in spans), spans
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans
    assert all(e.alternatives[0].words for e in finals), "finals carry no words"
    assert all(e.alternatives[0].language == "en-US" for e in finals)
    assert all(0 < e.alternatives[0].confidence <= 1 for e in finals)


async def test_livekit_nvidia_stt_unknown_model_is_refused(
    riva_server: ServerThread, caplog: pytest.LogCaptureFixture
) -> None:
    """A model the server does not serve is refused with INVALID_ARGUMENT; the plugin
    logs it and ends the stream with no transcript (it raises nothing to the agent)."""
    stt = nvidia.STT(server=riva_server.uri, use_ssl=False, model="not-a-served-model")
    with caplog.at_level(logging.ERROR, logger="livekit.plugins.nvidia"):
        events = await run_stream(stt, load_pcm16(SPEECH / "jfk" / "jfk.wav")[: RATE * 2])
    assert not [e for e in events if e.alternatives]
    errors = thread_errors(caplog)
    assert "INVALID_ARGUMENT" in errors, errors
    assert "not-a-served-model" in errors, errors
