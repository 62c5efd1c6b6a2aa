"""Which worker instance a session goes to: sans-I/O, with the clock injected.

A recognition session keeps its state (audio, VAD, recogniser) on one worker, so every call
of a session goes to the instance its ``open`` went to (session affinity: the client calls
``Client.direct`` with the bound instance id). A new session goes to the least loaded
instance: the one with the lowest share of its ``max_streams`` in use, counting what the
worker last reported plus the sessions this router sent it since, and never fewer than the
sessions this router has open there. Instances that failed are left out for a while, so a
killed worker's new sessions go to the survivors before discovery drops it (the file and
etcd backends drop a dead instance only when its lease runs out, ~10 s).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .wire import WorkerLoad

__all__ = ["SessionRouter"]

QUARANTINE_SECONDS = 5.0
"""How long an instance that failed is passed over for new sessions."""


@dataclass(slots=True)
class _Instance:
    load: WorkerLoad | None = None
    sent_since_report: int = 0
    bound: int = 0
    down_until: float = float("-inf")
    last_pick: int = 0
    opened: int = 0


class SessionRouter:
    """Session-sticky routing with least-loaded choice of new sessions.

    Args:
        clock: Monotonic seconds.
        quarantine: Seconds an instance that failed is passed over.
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        quarantine: float = QUARANTINE_SECONDS,
    ) -> None:
        self._clock = clock
        self._quarantine = quarantine
        self._instances: dict[int, _Instance] = {}
        self._sessions: dict[str, int] = {}
        self._picks = itertools.count(1)

    @property
    def instances(self) -> list[int]:
        return sorted(self._instances)

    def set_instances(self, ids: Iterable[int]) -> None:
        """The instances discovery lists now; sessions bound to a vanished one stay bound
        (their calls fail and the client handles the failure)."""
        wanted = set(ids)
        for gone in set(self._instances) - wanted:
            del self._instances[gone]
        for new in wanted - set(self._instances):
            self._instances[new] = _Instance()

    def report(self, instance: int, load: WorkerLoad) -> None:
        """A load report from ``instance``; it answered, so it is up."""
        state = self._instances.get(instance)
        if state is None:
            return
        state.load = load
        state.sent_since_report = 0
        state.down_until = float("-inf")

    def failed(self, instance: int) -> None:
        """A call to ``instance`` could not reach it: pass it over for a while."""
        state = self._instances.get(instance)
        if state is not None:
            state.down_until = self._clock() + self._quarantine
            state.load = None

    def available(self, instance: int) -> bool:
        state = self._instances.get(instance)
        return state is not None and state.down_until <= self._clock()

    def estimated_streams(self, instance: int) -> int:
        state = self._instances[instance]
        reported = state.load.active_streams if state.load is not None else 0
        return max(reported + state.sent_since_report, state.bound)

    def choose(self, exclude: Iterable[int] = ()) -> int | None:
        """The instance for a new session, or ``None`` when none is up.

        Instances that are draining, quarantined or in ``exclude`` are passed over; among
        the rest the least utilised wins, then the one picked longest ago (so equal
        workers take turns).
        """
        skipped = set(exclude)
        now = self._clock()
        candidates = [
            (self._key(instance, state), instance)
            for instance, state in self._instances.items()
            if instance not in skipped
            and state.down_until <= now
            and (state.load is None or state.load.serving)
        ]
        if not candidates:
            return None
        return min(candidates)[1]

    def _key(self, instance: int, state: _Instance) -> tuple[float, int]:
        capacity = state.load.max_streams if state.load is not None else 1
        return self.estimated_streams(instance) / max(capacity, 1), state.last_pick

    def bind(self, session: str, instance: int) -> None:
        """Send every later call of ``session`` to ``instance``."""
        self._sessions[session] = instance
        state = self._instances.get(instance)
        if state is not None:
            state.bound += 1
            state.opened += 1
            state.sent_since_report += 1
            state.last_pick = next(self._picks)

    def instance_of(self, session: str) -> int | None:
        return self._sessions.get(session)

    @property
    def sessions(self) -> dict[str, int]:
        """The open sessions and the instance each is bound to."""
        return dict(self._sessions)

    @property
    def opened(self) -> dict[int, int]:
        """Sessions this router has sent to each listed instance so far."""
        return {instance: state.opened for instance, state in self._instances.items()}

    def release(self, session: str) -> None:
        """``session`` ended; its instance has one stream fewer from this router."""
        instance = self._sessions.pop(session, None)
        state = self._instances.get(instance) if instance is not None else None
        if state is not None:
            state.bound -= 1
