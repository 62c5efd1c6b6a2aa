"""The realtime session's audio between the commit and Riva, without I/O: what was sent,
what Riva reported processed, and the back-pressure between the two.

NVIDIA's client sends a file as fast as it reads it, and the realtime API has no
``too_fast`` limit; instead, while Riva is more than ``max_backlog_seconds`` of audio
behind what was sent it (from its ``audio_processed``), the session is
:attr:`ForwardedAudio.backlogged` and its connection stops reading the client. Each forced
end of utterance sent (``force_eou``) is owed an answer by Riva, and so is progress while
the client is held (:class:`~asr_server.stall.StallWatch`). Plain data, the clock passed in.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..actions import FinishUtterance, ForwardAudio
from ..relay import BYTES_PER_SECOND
from ..stall import StallWatch

__all__ = ["ForwardedAudio"]


class ForwardedAudio:
    """One session's audio sent to Riva.

    Args:
        stall: The session's stall detector, told of every forced end and held client.
        max_backlog_seconds: Audio sent and not yet reported processed beyond which the
            client is held.
    """

    def __init__(self, stall: StallWatch, max_backlog_seconds: float) -> None:
        self._stall = stall
        self._max_backlog = max_backlog_seconds
        self._forwarded = 0
        """16 kHz PCM16 bytes sent to Riva."""
        self._processed = 0.0
        """Seconds of session audio Riva reported processed."""
        self._has_audio = False
        """Audio sent since the last forced end."""

    def commit(
        self, parts: Iterable[ForwardAudio | FinishUtterance], now: float, *, final: bool
    ) -> list[ForwardAudio | FinishUtterance]:
        """What of a commit's audio and forced ends goes to Riva: a forced end only after
        audio since the last one, and none at the last commit (``done`` ends the audio,
        which finalises it anyway)."""
        sent: list[ForwardAudio | FinishUtterance] = []
        for part in parts:
            if isinstance(part, ForwardAudio):
                self._forwarded += len(part.pcm16)
                self._has_audio = True
                sent.append(part)
            elif self._has_audio and not final:
                self._has_audio = False
                self._stall.owe_cut(self.forwarded_seconds, now)
                sent.append(part)
        if self.backlogged:
            self._stall.owe(now)  # Riva owes progress while the client is held
        return sent

    def reached(self, seconds: float) -> bool:
        """Riva reported ``seconds`` of session audio processed.

        Returns:
            Whether that released a held client (its silence was ours, not idling).
        """
        held = self.backlogged
        self._processed = max(self._processed, seconds)
        return held and not self.backlogged

    @property
    def forwarded_seconds(self) -> float:
        """Seconds of audio sent to Riva (cleared audio excluded)."""
        return self._forwarded / BYTES_PER_SECOND

    @property
    def processed_seconds(self) -> float:
        """Seconds of audio Riva reported processed (its latest ``audio_processed``)."""
        return self._processed

    @property
    def backlog_seconds(self) -> float:
        """Audio sent to Riva that it has not reported processed. The route stops reading
        the socket while this is high (NVIDIA's client sends a file as fast as it reads
        it): back-pressure instead of refusing fast audio."""
        return max(0.0, self.forwarded_seconds - self._processed)

    @property
    def backlogged(self) -> bool:
        """Whether :attr:`backlog_seconds` is over ``max_backlog_seconds``: the route
        stops reading client frames until it is not. Meanwhile the client is not idle
        (no ``idle_timeout``) and Riva owes progress: none for ``final_timeout_seconds``
        ends the session as stalled (``backend_unavailable``), as after ``done``."""
        return self.backlog_seconds > self._max_backlog
