"""The one private grpcio detail the client relies on, checked against the installed grpcio.

grpc.aio replaces the status a server delivered with "INTERNAL: Internal error from Core"
when the server ends a stream while the client is still writing (grpc/grpc#36066). The
client reads the real status in the call's done-callback from ``call._cython_call._status``
(``asr.channel.DeliveredStatus``); no public API exposes it there. If a grpcio upgrade
moves it, this test fails by name, instead of the client silently reporting INTERNAL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

from .scripted import Script, start_scripted


async def test_done_callback_sees_the_delivered_status() -> None:
    server, port = await start_scripted(Script(steps=["invalid"]))
    seen: asyncio.Future[tuple[object, str]] = asyncio.get_running_loop().create_future()

    def done(call: grpc.aio.Call) -> None:
        status = call._cython_call._status
        seen.set_result((status.code(), status.details()))

    async def requests() -> AsyncIterator[rasr.StreamingRecognizeRequest]:
        yield rasr.StreamingRecognizeRequest(streaming_config=rasr.StreamingRecognitionConfig())
        yield rasr.StreamingRecognizeRequest(audio_content=b"\x00\x00" * 1600)

    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            call = rasr_grpc.RivaSpeechRecognitionStub(channel).StreamingRecognize(requests())
            call.add_done_callback(done)
            try:
                async for _ in call:
                    pass
            except grpc.aio.AioRpcError:
                pass
            code, details = await asyncio.wait_for(seen, 10)
    finally:
        await server.stop(None)
    assert code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert details == "scripted: bad config"
