"""What a long session's transcript looks like, end to end: real WebSocket client, the
gateway, the embedded server with Whisper tiny.en and Silero VAD.

One session is streamed once for the module (2x real time): JFK framed by silence, twice,
then non-speech (white noise, a tone, DTMF-like beeps) and silence, with punctuation on.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import numpy as np
import pytest
from websockets.asyncio.client import connect

from asr.audio import float32_to_pcm16, read_audio
from asr.wer import normalize, word_error_rate

from .conftest import REPO, SPEECH, ServerThread
from .helpers import JFK_TEXT, check_order, gateway, receive_all, send_audio

JFK = SPEECH / "jfk" / "jfk.wav"
NON_SPEECH = REPO / "tests" / "fixtures" / "non_speech"
LEAD, TAIL = 1.0, 6.0
PASSES = 2


def session_audio() -> tuple[bytes, float]:
    """The session's PCM16 and the stream time where the last speech pass ends."""
    jfk, _ = read_audio(JFK)
    silence = np.zeros(16_000, np.float32)  # 1 s
    lead, tail = np.zeros(int(LEAD * 16_000), np.float32), np.zeros(int(TAIL * 16_000), np.float32)
    parts: list[np.ndarray] = []
    for _ in range(PASSES):
        parts += [lead, jfk, tail]
    speech_end = PASSES * (LEAD + len(jfk) / 16_000) + (PASSES - 1) * TAIL
    for name in ("white-noise-30dBFS.wav", "tone-440Hz.wav", "dtmf-like.wav"):
        noise, rate = read_audio(NON_SPEECH / name)
        assert rate == 16_000
        parts += [noise, silence]
    return float32_to_pcm16(np.concatenate(parts)), speech_end


@pytest.fixture(scope="module")
def session(riva_server: ServerThread) -> tuple[list[dict[str, Any]], float]:
    pcm, speech_end = session_audio()

    async def run() -> list[dict[str, Any]]:
        async with gateway(riva_server.uri) as gw, connect(gw.url + "?punctuation=true") as ws:
            receiver = asyncio.create_task(receive_all(ws))
            await send_audio(ws, pcm)
            messages = await receiver
        assert ws.close_code == 1000
        return messages

    return asyncio.run(run()), speech_end


def test_later_finals_of_a_session_are_punctuated(
    session: tuple[list[dict[str, Any]], float],
) -> None:
    messages, _ = session
    check_order(messages)
    finals = [m["text"] for m in messages if m["type"] == "transcript.final" and m["text"]]
    # Each pass is two utterances ("... ask not" | "what your country ..."), cut at
    # JFK's pause. The fragments used to come back as "And so my fellow Americans ask
    # not": each utterance was decoded alone.
    assert len(finals) >= 2 * PASSES, finals
    for text in finals[1:]:
        assert text[0].isupper() and re.search(r"[.,;:!?]", text), finals
    per_pass = len(finals) // PASSES
    for i in range(PASSES):
        text = " ".join(finals[i * per_pass : (i + 1) * per_pass])
        assert word_error_rate([JFK_TEXT], [text]) <= 0.15, finals


def test_no_text_over_pauses_or_non_speech(
    session: tuple[list[dict[str, Any]], float],
) -> None:
    messages, speech_end = session
    texts = [m for m in messages if m["type"] in ("transcript.partial", "transcript.final")]
    # Whisper's filler for silence and a syllable: never shown, not even as a partial.
    assert not [m for m in texts if re.search(r"thank you", m["text"], re.IGNORECASE)], texts
    # Nothing from the audio after the last word. No final may start there; one whose
    # utterance ran on into the noise, and a partial whose decode finished late (it
    # reports the audio received by then, far past the speech on a loaded machine), must
    # still hold nothing but JFK's words.
    finals = [m for m in texts if m["type"] == "transcript.final" and m["text"]]
    assert not [m for m in finals if m["start"] >= speech_end], finals
    jfk_words = set(normalize(JFK_TEXT).split())
    late = [
        m
        for m in texts
        if m["text"]
        and (m.get("end", 0.0) > speech_end or m["audio_processed"] > speech_end + 2.0)
        and not set(normalize(m["text"]).split()) <= jfk_words
    ]
    assert late == [], late
    assert messages[-1]["type"] == "session.end"
    assert messages[-1]["audio_seconds"] == pytest.approx(speech_end + TAIL + 3 * 4.0, abs=0.1), (
        messages[-1]
    )
