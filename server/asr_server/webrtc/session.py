"""The WebSocket contract's session with the one rule WebRTC adds; no I/O.

Over WebRTC the audio is the Opus track, decoded on the server to 16 kHz PCM16
(:mod:`asr_server.webrtc.audio`) before it reaches the session as binary frames. The
contract's ``encoding`` and ``sample_rate`` describe the client's binary frames, so here
they may only say what the server feeds the session: ``pcm16`` at 16000 Hz. Anything
else, in the query string of the offer or in a ``config`` message on the data channel,
is an ``invalid_config`` error. Every other rule is :class:`asr_server.protocol.Session`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asr.contract import ErrorCode

from ..protocol import Action, Session, loads

__all__ = ["FIXED_AUDIO", "WebRtcSession", "audio_format_problem"]

FIXED_AUDIO: Mapping[str, Any] = {"encoding": "pcm16", "sample_rate": 16_000}
"""What ``encoding`` and ``sample_rate`` are over WebRTC (the decoded track)."""


def audio_format_problem(config: Mapping[str, Any]) -> str | None:
    """Why ``config`` (a query string's single values or a ``config`` message) does not fit
    WebRTC's decoded track, or ``None`` when it does."""
    for key, fixed in FIXED_AUDIO.items():
        value = config.get(key)
        if value is None:
            continue
        if str(value) != str(fixed):
            return (
                f"{key} is {fixed!r} over WebRTC (the server decodes the Opus track), not {value!r}"
            )
    return None


class WebRtcSession(Session):
    """A :class:`~asr_server.protocol.Session` fed by the decoded audio track."""

    def receive_text(self, text: str, now: float) -> list[Action]:
        """A data channel message; a ``config`` with another audio format is refused."""
        try:
            data = loads(text)
        except ValueError:
            data = None  # the session says what is wrong with it
        if isinstance(data, dict) and data.get("type") == "config":
            problem = audio_format_problem(data)
            if problem is not None:
                return self.refuse(ErrorCode.INVALID_CONFIG, f"invalid 'config' message: {problem}")
        return super().receive_text(text, now)
