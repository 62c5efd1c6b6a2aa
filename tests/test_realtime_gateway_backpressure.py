"""Back-pressure on NVIDIA's realtime API: a client that sends a file as fast as it reads
it is held back while Riva (``asr riva-local`` in a child process, stopped and resumed)
is behind, not refused; and the session's side of it without sockets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from websockets.asyncio.client import ClientConnection, connect

from asr.audio import PCM16_BYTES_PER_SECOND, load_pcm16
from asr.events import Progress
from asr_server.app import GatewayServer
from asr_server.limits import Limits
from asr_server.protocol import Close
from asr_server.realtime import RealtimeSession
from asr_server.realtime import Send as RealtimeSend
from asr_server.realtime_connection import READ_AHEAD, RealtimeConnection
from asr_server.routes_realtime import MAX_BACKLOG_SECONDS

from .helpers import JFK, RivaProcess, closed_port, gateway, until
from .realtime_protocol_support import append, event
from .realtime_support import (
    REFERENCE,
    completed,
    events_until_close,
    next_event,
    realtime_url,
    send_pcm,
    wer,
)


@pytest.fixture(scope="module")
def riva_process() -> Iterator[RivaProcess]:
    with RivaProcess(closed_port()) as process:
        yield process


def the_session(gw: GatewayServer) -> RealtimeConnection:
    [connection] = gw.gateway.admission.sessions
    assert isinstance(connection, RealtimeConnection)
    return connection


async def stream_open(ws: ClientConnection, pcm: bytes) -> None:
    """Send ``pcm`` and wait for Riva's first delta: its call is open and answering."""
    await send_pcm(ws, pcm)
    while (answer := await next_event(ws))["type"] != (
        "conversation.item.input_audio_transcription.delta"
    ):
        assert answer["type"] != "error", answer


async def sending_with_riva_paused(
    ws: ClientConnection, riva_process: RivaProcess, pcm: bytes
) -> asyncio.Task[None]:
    """Open the session on the first 2 s of ``pcm`` (stream_open), pause Riva and send the
    rest in a task, as fast as the socket takes it; the caller resumes Riva."""
    assert (await next_event(ws))["type"] == "conversation.created"
    first = 2 * PCM16_BYTES_PER_SECOND
    await stream_open(ws, pcm[:first])
    riva_process.pause()
    return asyncio.create_task(send_pcm(ws, pcm[first:]))


async def test_fast_audio_is_held_back_not_refused(riva_process: RivaProcess) -> None:
    """A client sending 33 s of audio at once while Riva is stopped: the session takes
    about MAX_BACKLOG_SECONDS more than Riva has processed and the gateway stops reading;
    once Riva goes on, so does the session, to the whole transcript."""
    pcm = load_pcm16(JFK) * 3
    async with gateway(riva_process.uri) as gw, connect(realtime_url(gw)) as ws:
        sender = await sending_with_riva_paused(ws, riva_process, pcm)
        try:
            connection = the_session(gw)
            session = connection.session
            # Backlogged, the connection holds every frame it takes (none acknowledged to
            # the channel): once it holds READ_AHEAD the reader has stopped, no more audio
            # comes in. Waited for as state, not for a time that load can stretch.
            try:
                await until(lambda: connection._held >= READ_AHEAD, timeout=10)
            except TimeoutError:
                pytest.fail(f"the backlog stayed at {session.backlog_seconds:.1f} s")
            assert connection._held == READ_AHEAD and session.backlogged
            taken = session.audio_seconds
            # Beyond the bound by at most the read-ahead: 8 chunks of 0.1 s.
            assert MAX_BACKLOG_SECONDS < session.backlog_seconds <= MAX_BACKLOG_SECONDS + 1.0
            # The rest waits in the client and the sockets' buffers (and uvicorn's few
            # frames), not in the session: of the 33 s it took about 12.
            assert taken < 20
        finally:
            riva_process.resume()
        await sender
        await ws.send(event("input_audio_buffer.done"))
        events = await events_until_close(ws)
    assert ws.close_code == 1000, events
    assert not [e for e in events if e["type"] == "error"]
    distinct = {e["item_id"]: e["transcript"] for e in completed(events)}
    assert wer(" ".join(distinct.values()), " ".join([REFERENCE] * 3)) <= 0.15


async def test_riva_stalled_while_the_client_is_held_is_backend_unavailable(
    riva_process: RivaProcess,
) -> None:
    limits = Limits(final_timeout_seconds=1.0, idle_timeout_seconds=0.5)
    pcm = load_pcm16(JFK) * 2
    async with gateway(riva_process.uri, limits=limits) as gw, connect(realtime_url(gw)) as ws:
        sender = await sending_with_riva_paused(ws, riva_process, pcm)
        try:
            events = await events_until_close(ws)
        finally:
            riva_process.resume()
        await sender
    # Held, the client is not idle: the stall is Riva's.
    assert events[-1]["type"] == "error", events
    assert events[-1]["error"]["code"] == "backend_unavailable"
    assert "(stalled)" in events[-1]["error"]["message"]
    assert ws.close_code == 4007


def test_backlogged_session_is_not_idle_and_waits_for_riva_progress() -> None:
    """The session's side of back-pressure, without sockets."""
    limits = Limits(idle_timeout_seconds=5, final_timeout_seconds=3)
    session = RealtimeSession(session_id="sess_x", limits=limits, now=0.0, max_backlog_seconds=2)
    session.open()
    session.receive_text(append(b"\x00\x00" * 16_000 * 3), 1.0)  # 3 s
    session.receive_text(event("input_audio_buffer.commit"), 1.0)
    assert session.backlogged and session.backlog_seconds == pytest.approx(3.0)
    # Held by the gateway, the client is not idle; Riva owes progress instead.
    assert session.deadline() == limits.max_session_seconds
    assert session.backend_deadline() == 4.0
    assert session.tick(4.0 - 1e-6) == []
    session.backend_event(Progress(audio_processed=0.5), offset=0, forced=False, now=3.5)
    assert session.backlogged and session.backend_deadline() == 6.5
    # Riva catches up: reading goes on, and the idle clock starts again from then.
    session.backend_event(Progress(audio_processed=2.0), offset=0, forced=False, now=6.0)
    assert not session.backlogged and session.backend_deadline() is None
    assert session.deadline() == 11.0
    stalled = RealtimeSession(session_id="sess_y", limits=limits, now=0.0, max_backlog_seconds=2)
    stalled.receive_text(append(b"\x00\x00" * 16_000 * 3), 1.0)
    stalled.receive_text(event("input_audio_buffer.commit"), 1.0)
    [error, close] = stalled.tick(4.0)
    assert isinstance(error, RealtimeSend) and error.event.type == "error"
    assert error.event.error.code == "backend_unavailable"
    assert close == Close(4007, "backend_unavailable")
