"""What the tests of the sans-I/O session of NVIDIA's realtime transcription API share:
a session opened on a fake clock, the client's events as the text frames it receives,
and the events and audio its actions carry.

The client events are built here once for the gateway's tests too (``realtime_support``).
"""

from __future__ import annotations

import base64
import io
import json
import wave
from typing import Any

import numpy as np

from asr_server.limits import Limits
from asr_server.protocol import ForwardAudio
from asr_server.realtime import Action, RealtimeSession, Send

SID = "sess_t"
TONE = (np.sin(np.arange(1600) / 5.0) * 8000).astype("<i2").tobytes()
"""100 ms of 16 kHz PCM16 (NVIDIA's client's chunk: 1600 frames)."""


def make(**kwargs: Any) -> RealtimeSession:
    limits = kwargs.pop("limits", Limits())
    session = RealtimeSession(session_id=SID, limits=limits, now=0.0, **kwargs)
    session.open()
    return session


def event(kind: str, **fields: Any) -> str:
    """The text frame of client event ``kind`` with ``fields``."""
    return json.dumps({"type": kind, **fields})


frame = event
"""The sans-I/O tests' name for :func:`event`: the frame a session receives."""


def append(pcm: bytes, *, force_eou: bool = False) -> str:
    """An ``input_audio_buffer.append`` of ``pcm``, with NVIDIA's ``force_eou`` if asked."""
    fields: dict[str, Any] = {"audio": base64.b64encode(pcm).decode()}
    if force_eou:
        fields["runtime_config"] = {"force_eou": "true"}  # as NVIDIA's client sends it
    return event("input_audio_buffer.append", **fields)


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
