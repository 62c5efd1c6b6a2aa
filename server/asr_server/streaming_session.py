"""The sans-I/O session as a :class:`~asr_server.streaming_connection.StreamingConnection`
drives it: what :class:`~asr_server.protocol.Session` (the own contract) and
:class:`~asr_server.realtime.RealtimeSession` (NVIDIA's realtime API) both offer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from asr.events import Final, Partial, Progress

from .actions import State

__all__ = ["StreamingSession"]


class StreamingSession(Protocol):
    """A sans-I/O session as its connection drives it: inputs in, actions out.

    The actions are the shared ones of :mod:`asr_server.actions` plus the interface's own
    ``Send`` (which :meth:`StreamingConnection._outgoing` recognises).
    """

    @property
    def session_id(self) -> str: ...

    @property
    def state(self) -> State: ...

    @property
    def audio_seconds(self) -> float: ...

    def receive_text(self, text: str, now: float) -> Sequence[object]: ...

    def receive_binary(self, data: bytes, now: float) -> Sequence[object]: ...

    def backend_event(
        self, event: Partial | Final | Progress, *, offset: float, forced: bool, now: float
    ) -> Sequence[object]: ...

    def backend_failed(self, exc: BaseException, now: float) -> Sequence[object]: ...

    def backend_stream_ended(self, *, forced: bool, now: float) -> Sequence[object]: ...

    def backend_done(self, now: float) -> Sequence[object]: ...

    def recording_failed(self, now: float) -> Sequence[object]: ...

    def recording_ended(
        self, *, recording_id: str | None, enhancement_job_id: str | None, now: float
    ) -> Sequence[object]: ...

    def shutdown(self, now: float, timeout: float) -> Sequence[object]: ...

    def tick(self, now: float) -> Sequence[object]: ...

    def deadline(self) -> float | None: ...

    def backend_deadline(self) -> float | None: ...
