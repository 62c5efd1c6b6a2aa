"""The stall detector of a session: whether Riva owes an answer, and since when it has shown
no progress at all.

An answer is owed after ``finalize`` (or ``force_eou``) until Riva shows it processed the
forced end (a response whose ``audio_processed`` reaches it), after ``end`` or a shutdown
until the gRPC call finishes, and while the caller says so (the realtime API's client held
by back-pressure). Every response in between (partial, final, or one without transcript)
restarts the wait: a slow backend that keeps answering is waited for, only one that shows
no progress for ``timeout`` seconds is stalled. Pure, the clock passed in.
"""

from __future__ import annotations

__all__ = ["StallWatch"]

_CUT_TOLERANCE = 0.01
"""Seconds: Riva's ``audio_processed`` is a float32 on the wire."""


class StallWatch:
    """Args:
    timeout: Seconds without progress, while an answer is owed, that make a stall.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.cut_pending: float | None = None
        """Where (seconds of session audio) the forced end Riva has yet to reach is."""
        self.waiting_since: float | None = None
        """Clock reading of the last progress while an answer is owed; ``None``: none is."""

    def owe_cut(self, at: float, now: float) -> None:
        """A forced end of utterance was put at ``at`` seconds of session audio."""
        self.cut_pending = at
        self.owe(now)

    def owe(self, now: float) -> None:
        """An answer is owed from ``now`` on (unless one already was)."""
        if self.waiting_since is None:
            self.waiting_since = now

    def response(self, reached: float, now: float, *, owed: bool) -> None:
        """Riva answered, having processed ``reached`` seconds of session audio.

        Args:
            reached: Seconds of session audio processed.
            now: Clock reading.
            owed: Riva owes an answer whatever it reached (as for :meth:`progress`).
        """
        if self.cut_pending is not None and reached >= self.cut_pending - _CUT_TOLERANCE:
            self.cut_pending = None
        self.progress(now, owed=owed)

    def progress(self, now: float, *, owed: bool) -> None:
        """Riva showed progress: restart the wait while it still owes an answer.

        Args:
            now: Clock reading.
            owed: Riva owes an answer besides a pending forced end: the audio has ended
                (``end``, a shutdown), or the client is held while Riva catches up.
        """
        owed = owed or self.cut_pending is not None
        self.waiting_since = now if owed else None

    def clear(self) -> None:
        """Nothing is owed any more."""
        self.waiting_since = None

    def deadline(self) -> float | None:
        """When the wait becomes a stall, or ``None`` when nothing is owed."""
        return None if self.waiting_since is None else self.waiting_since + self.timeout
