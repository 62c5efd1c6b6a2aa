"""When each second of session audio arrived, to measure how late results come.

A result covers session audio up to some position (``end`` of a final, ``audio_processed``
of a partial); its latency is the wall time between the arrival of the frame holding that
position and the result being sent. Pure data; the clock is passed in.
"""

from __future__ import annotations

import bisect

__all__ = ["ArrivalClock"]


class ArrivalClock:
    """Arrival times of the session's audio frames, the last ``keep`` of them.

    Args:
        keep: Frames remembered (at 20-100 ms per frame, minutes of audio); results refer
            to recent audio, and older positions answer ``None``.
    """

    def __init__(self, keep: int = 4096) -> None:
        self._keep = keep
        self._ends: list[float] = []  # session audio seconds at the end of each frame
        self._times: list[float] = []

    def record(self, audio_end: float, now: float) -> None:
        """A frame arrived at ``now``; session audio now lasts ``audio_end`` seconds."""
        if self._ends and audio_end <= self._ends[-1]:
            return  # a frame that added no audio
        self._ends.append(audio_end)
        self._times.append(now)
        if len(self._ends) > 2 * self._keep:
            del self._ends[: self._keep], self._times[: self._keep]

    def arrival(self, position: float) -> float | None:
        """When the audio at ``position`` seconds arrived, or ``None`` if unknown."""
        if not self._ends:
            return None
        # Results round positions to milliseconds: one a little past the last frame is
        # still in it.
        index = min(bisect.bisect_left(self._ends, position - 1e-6), len(self._ends) - 1)
        return self._times[index]

    def latency(self, position: float, now: float) -> float | None:
        """Seconds from the arrival of ``position`` to ``now``, or ``None`` if unknown."""
        arrived = self.arrival(position)
        return None if arrived is None else max(0.0, now - arrived)
