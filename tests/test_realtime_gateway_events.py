"""NVIDIA's realtime API on a real gateway, to a plain ``websockets`` client: bad events
answered and the session going on, Riva down, ``force_eou`` completing the audio so far."""

from __future__ import annotations

from websockets.asyncio.client import connect

from asr.audio import PCM16_BYTES_PER_SECOND, chunk_bytes, load_pcm16
from asr.wer import normalize

from .conftest import ServerThread
from .helpers import JFK, closed_port, gateway
from .realtime_protocol_support import append, event
from .realtime_support import completed, events_until_close, next_event, realtime_url, send_pcm, wer


async def test_bad_events_get_errors_and_the_session_goes_on(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    async with gateway(riva_server.uri) as gw:
        async with connect(realtime_url(gw), subprotocols=["realtime"]) as ws:  # type: ignore[list-item]
            assert ws.subprotocol == "realtime"
            assert (await next_event(ws))["type"] == "conversation.created"
            bad: list[tuple[str | bytes, str]] = [
                ("{not json", "invalid_json"),
                (event("response.create"), "unknown_event_type"),
                (event("input_audio_buffer.append", audio="A@A="), "invalid_event"),
                (event("transcription_session.update", session={"bogus": 1}), "invalid_event"),
                (b"\x00\x01", "unsupported_frame"),
            ]
            for frame, code in bad:
                await ws.send(frame)
                answer = await next_event(ws)
                assert answer["type"] == "error" and answer["error"]["code"] == code, answer
                assert answer["error"]["type"] == "invalid_request_error"
            await ws.send(event("transcription_session.update", session={}))
            assert (await next_event(ws))["type"] == "transcription_session.updated"
            await send_pcm(ws, pcm)
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
        assert ws.close_code == 1000
        assert not [e for e in events if e["type"] == "error"]
        finals = completed(events)
        assert finals[-1]["is_last_result"] is True
        distinct = {e["item_id"]: e["transcript"] for e in finals}
        assert wer(" ".join(distinct.values())) <= 0.15


async def test_riva_down_is_an_error_event_and_a_close() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}") as gw:
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            await send_pcm(ws, b"\x00\x00" * 16_000)
            events = await events_until_close(ws)
        error = events[-1]
        assert error["type"] == "error", events
        assert error["error"]["code"] == "backend_unavailable"
        assert error["error"]["retryable"] is True
        assert ws.close_code == 4007
        # The gateway keeps serving: the next connection opens.
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"


async def test_force_eou_completes_the_audio_so_far(riva_server: ServerThread) -> None:
    pcm = load_pcm16(JFK)
    head = pcm[: int(2.2 * PCM16_BYTES_PER_SECOND) // 2 * 2]  # "and so my fellow ..."
    async with gateway(riva_server.uri) as gw:
        async with connect(realtime_url(gw)) as ws:
            assert (await next_event(ws))["type"] == "conversation.created"
            chunks = list(chunk_bytes(head, 100))
            for i, chunk in enumerate(chunks):
                await ws.send(append(chunk, force_eou=i == len(chunks) - 1))
                await ws.send(event("input_audio_buffer.commit"))
            # No more audio and no done: only the forced end can complete the utterance.
            while not (answer := await next_event(ws))["type"].endswith(".completed"):
                assert answer["type"] != "error", answer
            assert answer["is_last_result"] is False
            assert "fellow" in normalize(answer["transcript"]), answer
            first_item = answer["item_id"]
            # The session goes on: the rest of the audio, then done.
            await send_pcm(ws, pcm[len(head) :])
            await ws.send(event("input_audio_buffer.done"))
            events = await events_until_close(ws)
        assert ws.close_code == 1000
        rest = completed(events)
        assert rest[-1]["is_last_result"] is True
        assert first_item not in {e["item_id"] for e in rest}
        distinct = {e["item_id"]: e["transcript"] for e in rest}
        assert "country" in normalize(" ".join(distinct.values()))
