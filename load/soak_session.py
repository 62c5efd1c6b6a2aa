"""One soak session over the WebSocket contract, recorded as what happened to it.

The soak needs to know *where* a session ended: refused at the door (an ``error`` or an
HTTP refusal before ``session.begin``), failed after admission (an ``error``, or a close
without ``session.end``, after ``session.begin``), or completed (``session.end``). The
golden runner's transport hides that line, so this module speaks the contract
(``docs/websocket-api.md``) itself with ``websockets``: options in the query string, audio
only after ``session.begin``, paced at real time in 100 ms frames, then ``end``.

Nothing here is inferred: audio counts as sent once ``send`` returned for its frame, a
final's span is its own ``end - start`` (first to last word, seconds of session audio).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, paced

from .clips import PcmClip
from .session import InFlight

__all__ = ["OUTCOMES", "QUERY", "SoakSession", "run_soak_session"]
QUERY = "?encoding=pcm16&sample_rate=16000&interim_results=true&word_timestamps=true"
OUTCOMES = ("completed", "refused", "failed")


@dataclass(frozen=True, slots=True)
class SoakSession:
    """What happened to one session; times are seconds since the soak began.

    Attributes:
        index: Order in which the sessions were opened.
        slot: The simulated user that opened it.
        step: Index of the schedule step in which it opened.
        clip: The clip's id.
        reference: What is said in the clip.
        opened: When the connection was attempted.
        began: When ``session.begin`` arrived; ``None`` when it never did.
        closed: When the session was over, whichever way.
        outcome: ``"completed"`` (``session.end`` came), ``"refused"`` (no
            ``session.begin``) or ``"failed"`` (it ended without ``session.end`` after
            ``session.begin``).
        code: Why it did not complete: the ``error`` message's code, ``http_STATUS`` for a
            refused handshake, ``connect_failed``, ``handshake_timeout``, ``closed_CODE``
            for a close with neither ``error`` nor ``session.end``, ``timeout`` when it ran
            past its bound. ``None`` for a completed session.
        close_code: The WebSocket close code, when there was a connection.
        clip_seconds: Length of the clip.
        audio_sent_seconds: Audio handed to the socket (only after ``session.begin``).
        finals: ``transcript.final`` messages received.
        final_span_seconds: Sum over the finals of ``end - start``.
        transcript: Every final's text, joined.
        admitted_in_flight: Admitted sessions open when this one ended, itself included
            if it was admitted.
    """

    index: int
    slot: int
    step: int
    clip: str
    reference: str
    opened: float
    began: float | None
    closed: float
    outcome: str
    code: str | None
    close_code: int | None
    clip_seconds: float
    audio_sent_seconds: float
    finals: int
    final_span_seconds: float
    transcript: str
    admitted_in_flight: int


@dataclass(slots=True)
class _State:
    began: float | None = None
    sent_bytes: int = 0
    finals: int = 0
    span: float = 0.0
    texts: list[str] = field(default_factory=list)
    code: str | None = None
    ended: bool = False
    close_code: int | None = None
    in_flight_at_end: int = 0


async def _send(ws: ClientConnection, pcm: bytes, state: _State, chunk_ms: int) -> None:
    try:
        async for chunk in paced(chunk_bytes(pcm, chunk_ms), PCM16_BYTES_PER_SECOND):
            await ws.send(chunk)
            state.sent_bytes += len(chunk)
        await ws.send('{"type":"end"}')
    except ConnectionClosed:
        pass  # the reader sees the close and records why


async def _converse(
    ws: ClientConnection, pcm: bytes, state: _State, admitted: InFlight, chunk_ms: int
) -> None:
    sender: asyncio.Task[None] | None = None
    try:
        async for frame in ws:
            if isinstance(frame, bytes):
                state.code = "binary_frame"
                break
            message = json.loads(frame)
            kind = message.get("type")
            if kind == "session.begin" and state.began is None:
                state.began = time.monotonic()
                admitted.enter()
                sender = asyncio.create_task(_send(ws, pcm, state, chunk_ms))
            elif kind == "transcript.final":
                state.finals += 1
                state.span += max(0.0, float(message["end"]) - float(message["start"]))
                if message.get("text"):
                    state.texts.append(str(message["text"]))
            elif kind == "error":
                state.code = str(message.get("code"))
            elif kind == "session.end":
                state.ended = True
    except ConnectionClosed:
        pass  # judged below by what had arrived
    finally:
        if sender is not None and not sender.done():
            sender.cancel()
        if sender is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await sender
        state.close_code = ws.close_code


async def run_soak_session(
    url: str,
    *,
    index: int,
    slot: int,
    step: int,
    clip: PcmClip,
    t0: float,
    admitted: InFlight,
    slack_seconds: float = 30.0,
    open_timeout: float = 10.0,
    chunk_ms: int = 100,
) -> SoakSession:
    """Open one session at ``url``, stream the clip at real time once admitted, record it.

    Args:
        url: The stream URL with :data:`QUERY`.
        index: Order of the session in the soak.
        slot: The simulated user.
        step: The schedule step it opens in.
        clip: What to stream.
        t0: ``time.monotonic()`` at the start of the soak.
        admitted: The soak's count of admitted sessions open now.
        slack_seconds: How long beyond the clip's length the session may take.
        open_timeout: Seconds for the TCP connection and the WebSocket handshake.
        chunk_ms: Audio per binary frame.
    """
    opened = time.monotonic()
    state = _State()
    try:
        async with asyncio.timeout(open_timeout + clip.seconds + slack_seconds):
            try:
                ws = await connect(
                    url,
                    open_timeout=open_timeout,
                    close_timeout=5.0,
                    compression=None,
                    max_size=None,
                )
            except InvalidStatus as exc:
                state.code = f"http_{exc.response.status_code}"
            except TimeoutError:
                state.code = "handshake_timeout"
            except (OSError, InvalidHandshake):
                state.code = "connect_failed"
            else:
                try:
                    await _converse(ws, clip.pcm, state, admitted, chunk_ms)
                finally:
                    state.in_flight_at_end = admitted.now
                    await ws.close()
    except TimeoutError:
        state.code = state.code or "timeout"
        state.in_flight_at_end = admitted.now
    finally:
        if state.began is not None:
            admitted.leave()
    if state.ended and state.code is None:
        outcome = "completed"
    else:
        outcome = "refused" if state.began is None else "failed"
        if state.code is None:
            state.code = f"closed_{state.close_code}"
    return SoakSession(
        index=index,
        slot=slot,
        step=step,
        clip=clip.clip.id,
        reference=clip.clip.text,
        opened=round(opened - t0, 3),
        began=None if state.began is None else round(state.began - t0, 3),
        closed=round(time.monotonic() - t0, 3),
        outcome=outcome,
        code=None if outcome == "completed" else state.code,
        close_code=state.close_code,
        clip_seconds=round(clip.seconds, 3),
        audio_sent_seconds=round(state.sent_bytes / PCM16_BYTES_PER_SECOND, 3),
        finals=state.finals,
        final_span_seconds=round(state.span, 3),
        transcript=" ".join(state.texts),
        admitted_in_flight=state.in_flight_at_end,
    )
