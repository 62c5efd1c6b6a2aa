"""The thinnest relay the gateway's stack allows: a floor for its CPU per stream.

``python -m load.bare_relay --riva HOST:PORT`` serves one WebSocket route on uvicorn +
Starlette, as the gateway does (asyncio's event loop, uvicorn's sans-I/O ``websockets``
protocol, no per-message deflate), and relays it to Riva over one ``grpc.aio`` channel,
with nothing else: no authentication, limits, sessions, timers, metrics, logs or
recordings. It prints ``load.bare_relay: serving on ws://127.0.0.1:PORT/`` once it listens.

What it costs per real-time stream is what the frameworks, the sockets and gRPC cost
before any of the gateway's own work, so the gateway's figure minus this one is the share
the gateway's code can change. Not part of the product: a reference for
``scripts/bench_gateway.py``.

Its protocol: binary frames are 16 kHz PCM16 audio, the text frame ``end`` ends it; every
Riva result comes back as ``{"text": ..., "final": ...}``; the server closes after the
call's last result. :class:`BareRelayTransport` is the runner's transport over it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import AsyncIterator

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
import uvicorn
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.asyncio.client import connect

from asr.events import Final, Partial
from asr.options import RecognitionOptions
from asr.protocol import audio_request, streaming_config

from .realtime_client import messages_while

__all__ = ["BareRelayTransport", "main"]

_CONFIG = rasr.StreamingRecognizeRequest(streaming_config=streaming_config(RecognitionOptions()))
"""The first request of every call: the library's, for its default options."""


def _app(riva: str) -> Starlette:
    channel: grpc.aio.Channel | None = None

    async def relay(ws: WebSocket) -> None:
        nonlocal channel
        if channel is None:  # made on the server's loop
            channel = grpc.aio.insecure_channel(riva)
        call = rasr_grpc.RivaSpeechRecognitionStub(channel).StreamingRecognize()
        await ws.accept()
        await call.write(_CONFIG)

        async def results() -> None:
            async for response in call:
                for result in response.results:
                    text = result.alternatives[0].transcript if result.alternatives else ""
                    await ws.send_text(json.dumps({"text": text, "final": result.is_final}))
            await ws.close()

        down = asyncio.create_task(results())
        while (message := await ws.receive())["type"] != "websocket.disconnect":
            if message.get("bytes"):
                await call.write(audio_request(message["bytes"]))
            elif message.get("text") == "end":
                await call.done_writing()
        with contextlib.suppress(Exception):
            await down

    return Starlette(routes=[WebSocketRoute("/", relay)])


async def _serve(riva: str, host: str, port: int) -> None:
    config = uvicorn.Config(
        _app(riva),
        host=host,
        port=port,
        loop="none",
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        lifespan="off",
        log_config=None,
        access_log=False,
    )
    config.load()
    server = uvicorn.Server(config)
    server.lifespan = config.lifespan_class(config)  # what Server.serve would set up
    await server.startup()
    bound = server.servers[0].sockets[0].getsockname()[1]
    print(f"load.bare_relay: serving on ws://{host}:{bound}/", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m load.bare_relay", description=__doc__)
    parser.add_argument("--riva", required=True, help="Riva endpoint HOST:PORT")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.riva, args.host, args.port))
    return 0


class BareRelayTransport:
    """The runner's transport over the bare relay's protocol."""

    name = "bare-relay"

    def __init__(self, url: str) -> None:
        self.url = url

    async def stream(
        self, audio: AsyncIterator[bytes], options: RecognitionOptions
    ) -> AsyncIterator[Partial | Final]:
        """Stream 16 kHz PCM16 mono ``audio``; yield Riva's results until the close."""
        async with connect(self.url, compression=None, max_size=None) as ws:

            async def send() -> None:
                async for chunk in audio:
                    await ws.send(chunk)
                await ws.send("end")

            async with contextlib.aclosing(messages_while(ws, send())) as results:
                async for result in results:
                    kind = Final if result["final"] else Partial
                    yield kind(text=result["text"])


if __name__ == "__main__":
    raise SystemExit(main())
