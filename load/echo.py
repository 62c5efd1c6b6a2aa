"""A Riva-compatible servicer that does no recognition, for measuring what gateways add.

``python -m load.echo`` serves ``StreamingRecognize`` on 127.0.0.1, a free port, and prints
``load.echo: serving on 127.0.0.1:PORT`` once it listens. It answers every audio chunk at
once with a partial naming the chunk (``chunk 0``, ``chunk 1``, ...) and the end of audio
with a final (``chunks N``, one word at the end of the audio). A client that sent a chunk
can therefore tell which chunk a partial answers, and the round trip chunk -> partial on a
path through a gateway differs from the direct gRPC one only by what the gateway adds.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from typing import Any

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

from asr.audio import PCM16_BYTES_PER_SECOND

__all__ = ["EchoServicer", "serve"]


class EchoServicer(rasr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]
    """A partial per audio chunk, a final at the end of the audio."""

    async def StreamingRecognize(
        self, requests: AsyncIterator[Any], context: Any
    ) -> AsyncIterator[Any]:
        index, received = 0, 0
        async for request in requests:
            if not request.audio_content:
                continue  # the streaming_config request (or a runtime_config marker)
            received += len(request.audio_content)
            result = rasr.StreamingRecognitionResult(
                is_final=False, stability=0.5, audio_processed=received / PCM16_BYTES_PER_SECOND
            )
            result.alternatives.add(transcript=f"chunk {index}")
            index += 1
            yield rasr.StreamingRecognizeResponse(results=[result])
        end_ms = received * 1000 // PCM16_BYTES_PER_SECOND
        final = rasr.StreamingRecognitionResult(
            is_final=True, audio_processed=received / PCM16_BYTES_PER_SECOND
        )
        alt = final.alternatives.add(transcript=f"chunks {index}", confidence=1.0)
        alt.words.add(
            word="chunks", start_time=max(0, end_ms - 100), end_time=end_ms, confidence=1.0
        )
        yield rasr.StreamingRecognizeResponse(results=[final])


async def serve(host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until SIGINT/SIGTERM; print the address once listening."""
    server = grpc.aio.server()
    rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(EchoServicer(), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    print(f"load.echo: serving on {host}:{bound}", flush=True)
    await stop.wait()
    await server.stop(0.5)


if __name__ == "__main__":
    asyncio.run(serve())
