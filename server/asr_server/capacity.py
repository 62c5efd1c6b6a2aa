"""How many sessions the backend can take, configured or learned; no I/O, clock passed in.

A gateway that admits more sessions than Riva has streams lets the extra ones begin and
then fail with RESOURCE_EXHAUSTED. Admitting only what the backend can take turns that into
a refusal at the door (``too_many_sessions`` before ``session.begin``), which a client can
retry elsewhere or later without having lost audio.

Riva does not announce its stream limit, so unless it is configured it is learned: when a
stream is refused as exhausted while ``n`` streams are open (the refused one included),
the backend holds ``n - 1``. Capacity can grow (a scaled-up NIM, other clients leaving), so
a learned limit rises by one every ``probe_seconds`` without a refusal; while the backend
stays full, the session that probes the edge is the one that fails after admission, one
per probe. Configure the limit to have none.
"""

from __future__ import annotations

__all__ = ["BackendCapacity"]


class BackendCapacity:
    """The backend's session capacity.

    Args:
        configured: Streams the backend takes, when the operator knows
            (``ASR_SERVER_LIMITS__BACKEND_STREAMS``); ``None`` learns it.
        probe_seconds: How often a learned limit is raised by one to find out whether the
            backend can take more.
    """

    def __init__(self, configured: int | None = None, *, probe_seconds: float = 60.0) -> None:
        self.configured = configured
        self.probe_seconds = probe_seconds
        self._learned: int | None = None
        self._learned_at = 0.0

    def limit(self, now: float) -> int | None:
        """Sessions the backend can take now; ``None`` when nothing is known."""
        if self.configured is not None:
            return self.configured
        if self._learned is None:
            return None
        return self._learned + int((now - self._learned_at) // self.probe_seconds)

    def next_change(self, now: float) -> float | None:
        """When a learned limit next rises by one (after ``now``); ``None`` when it does
        not change by itself (configured, or nothing learned)."""
        if self.configured is not None or self._learned is None:
            return None
        probes = (now - self._learned_at) // self.probe_seconds + 1
        return self._learned_at + probes * self.probe_seconds

    def admits(self, open_sessions: int, now: float) -> bool:
        """Whether one more session fits next to ``open_sessions``."""
        limit = self.limit(now)
        return limit is None or open_sessions < limit

    def exhausted(self, open_streams: int, now: float) -> None:
        """The backend refused a stream while ``open_streams`` streams (the refused one
        included) were open."""
        if self.configured is None:
            self._learned = max(1, open_streams - 1)
            self._learned_at = now
