"""A client of the gateway's NIM realtime interface, as a runner transport.

:class:`RealtimeTransport` speaks ``/v1/realtime?intent=transcription`` the way NVIDIA's
own client (``riva.client.realtime``) does: it waits for ``conversation.created``, sends
``transcription_session.update`` and waits for ``...updated``, then per audio chunk an
``input_audio_buffer.append`` (base64) and an ``input_audio_buffer.commit``, and at the end
``input_audio_buffer.done``. It yields a :class:`~asr.events.Partial` per ``...delta`` and
a :class:`~asr.events.Final` per ``...completed``, until the one with ``is_last_result``.
The benchmark uses it to drive the interface with the same audio as the other paths; the
gateway's tests check the interface itself.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from asr.errors import ServerError
from asr.events import Final, Partial
from asr.options import RecognitionOptions

__all__ = ["REALTIME_QUERY", "RealtimeTransport", "messages_while", "realtime_url"]

REALTIME_QUERY = "/v1/realtime?intent=transcription"
"""Path and query of the realtime transcription interface."""

_DELTA = "conversation.item.input_audio_transcription.delta"
_COMPLETED = "conversation.item.input_audio_transcription.completed"
_COMMIT = '{"type":"input_audio_buffer.commit"}'


def realtime_url(contract_url: str) -> str:
    """The realtime URL of the gateway whose own-contract stream URL is ``contract_url``."""
    scheme, rest = contract_url.split("://", 1)
    return f"{scheme}://{rest.split('/', 1)[0]}{REALTIME_QUERY}"


async def messages_while(
    ws: ClientConnection, sending: Coroutine[Any, Any, None]
) -> AsyncGenerator[dict[str, Any], None]:
    """The JSON messages ``ws`` receives while ``sending`` runs beside them as a task
    (cancelled when the caller stops; close this generator with ``aclosing``)."""
    sender = asyncio.create_task(sending)
    try:
        async for frame in ws:
            yield json.loads(frame)
    finally:
        sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sender


async def _expect(ws: ClientConnection, kind: str) -> None:
    message = json.loads(await ws.recv())
    if message.get("type") != kind:
        raise ServerError(f"expected {kind}, got {message}")


class RealtimeTransport:
    """The runner's transport over the realtime interface (``ws://`` or ``wss://``).

    Args:
        url: ``ws://HOST:PORT/v1/realtime?intent=transcription``.
        name: The path's name in reports.
    """

    def __init__(self, url: str, *, name: str = "realtime") -> None:
        self.url = url
        self.name = name

    async def stream(
        self, audio: AsyncIterator[bytes], options: RecognitionOptions
    ) -> AsyncIterator[Partial | Final]:
        """Stream 16 kHz PCM16 mono ``audio`` as one session; yield its results.

        Raises:
            asr.errors.ServerError: The server sent an ``error`` event or something out
                of order.
        """
        async with connect(self.url, compression=None, max_size=None) as ws:
            await _expect(ws, "conversation.created")
            await ws.send(json.dumps({"type": "transcription_session.update", "session": {}}))
            await _expect(ws, "transcription_session.updated")

            async def send() -> None:
                with contextlib.suppress(ConnectionClosed):
                    async for chunk in audio:
                        b64 = base64.b64encode(chunk).decode("ascii")
                        await ws.send(f'{{"type":"input_audio_buffer.append","audio":"{b64}"}}')
                        await ws.send(_COMMIT)
                    await ws.send('{"type":"input_audio_buffer.done"}')

            async with contextlib.aclosing(messages_while(ws, send())) as messages:
                async for message in messages:
                    kind = message.get("type")
                    if kind == _DELTA:
                        yield Partial(text=message["delta"])
                    elif kind == _COMPLETED:
                        yield Final(text=message["transcript"])
                        if message.get("is_last_result"):
                            break
                    elif kind == "error":
                        raise ServerError(str(message.get("error")))
