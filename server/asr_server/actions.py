"""What the sans-I/O sessions ask their I/O layer to do, and their states.

:class:`~asr_server.protocol.Session` (the own contract) returns lists of :data:`Action`,
:class:`~asr_server.realtime.RealtimeSession` (NIM's realtime API) the same but for its own
``Send`` of a realtime event; their connections carry them out in order. Plain frozen
data, no behaviour.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from asr.contract import AnyServerMessage
from asr.options import RecognitionOptions

__all__ = [
    "Action",
    "Close",
    "CommonAction",
    "EndAudio",
    "EndRecording",
    "FinishUtterance",
    "ForwardAudio",
    "GOING_AWAY",
    "Send",
    "StartBackend",
    "StartRecording",
    "State",
]

GOING_AWAY = 1001
"""RFC 6455 close code of a session ended by a server shutdown."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to the client as a JSON text frame."""

    message: AnyServerMessage


@dataclass(frozen=True, slots=True)
class StartBackend:
    """Open the session's Riva relay with these options (once, before the first audio)."""

    options: RecognitionOptions


@dataclass(frozen=True, slots=True)
class ForwardAudio:
    """Send 16 kHz mono PCM16 audio to Riva (and to the recording, when there is one)."""

    pcm16: bytes


@dataclass(frozen=True, slots=True)
class FinishUtterance:
    """Force an end of utterance in the Riva stream after the audio forwarded so far."""


@dataclass(frozen=True, slots=True)
class EndAudio:
    """No more audio: let Riva flush its finals, then report ``backend_done``."""


@dataclass(frozen=True, slots=True)
class StartRecording:
    """Keep this session's audio and finals (issue 15); comes before the first
    :class:`ForwardAudio`. A failure is reported with ``Session.recording_failed``.

    Attributes:
        enhance_on_end: Queue an enhancement job when the recording ends.
    """

    enhance_on_end: bool


@dataclass(frozen=True, slots=True)
class EndRecording:
    """Close the recording (queueing its enhancement if asked), then report its ids with
    ``Session.recording_ended``; ``session.end`` waits for them."""


@dataclass(frozen=True, slots=True)
class Close:
    """Close the WebSocket with ``code`` and ``reason``."""

    code: int
    reason: str


CommonAction = (
    StartBackend | ForwardAudio | FinishUtterance | EndAudio | StartRecording | EndRecording | Close
)
"""Every action but the interface's own ``Send``."""

Action = Send | CommonAction
"""An action of the own contract's session."""


class State(Enum):
    """Where a session is in its life."""

    OPEN = "open"
    """Accepting audio and control messages."""
    DRAINING = "draining"
    """``end`` received: waiting for Riva's last finals."""
    CLOSED = "closed"
    """A close was requested; every later input is ignored."""
