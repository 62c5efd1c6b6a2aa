"""What the tests of the own contract's sans-I/O WebSocket session share: a session
opened on a fake clock with the query, limits and recording policy a test gives.
"""

from __future__ import annotations

from asr_server.limits import Limits
from asr_server.protocol import Action, Session
from asr_server.recordings.policy import RecordingPolicy


def make(
    query: dict[str, list[str]] | None = None,
    *,
    require_config: bool = False,
    recording: RecordingPolicy = RecordingPolicy.OFF,
    **limits: float,
) -> tuple[Session, list[Action]]:
    session = Session(
        session_id="s1",
        limits=Limits(**limits),
        now=0.0,
        query=query,
        require_config=require_config,
        recording=recording,
    )
    return session, session.open()
