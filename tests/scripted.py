"""A scripted Riva servicer on loopback, used only to inject faults into real gRPC calls.

Each call takes the next step of the script; the last step repeats. Steps:

- ``"ok"``: answer; streams read all audio and send one final whose transcript is
  ``"bytes=<audio bytes received>"``, after a partial if interim results were asked.
- ``"unavailable"`` / ``"invalid"`` / ``"exhausted"``: abort with that status at once.
- ``"cut_before_results"``: read half of what the client sends, then abort UNAVAILABLE.
- ``"cut_after_results"``: send a partial and a final, then abort UNAVAILABLE.
- ``"hang"``: never answer (the client's deadline fires).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc


def _final(text: str, audio_processed: float = 0.0) -> rasr.StreamingRecognitionResult:
    result = rasr.StreamingRecognitionResult(is_final=True, audio_processed=audio_processed)
    result.alternatives.add(transcript=text, confidence=0.9)
    return result


def _partial(text: str) -> rasr.StreamingRecognitionResult:
    result = rasr.StreamingRecognitionResult(is_final=False, stability=0.5)
    result.alternatives.add(transcript=text)
    return result


@dataclass
class Script(rasr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]  # untyped generated base
    steps: list[str]
    calls: int = 0
    metadata: list[dict[str, str]] = field(default_factory=list)
    audio_bytes: list[int] = field(default_factory=list)
    eou_at: list[list[int]] = field(default_factory=list)
    """Per call, the audio bytes received before each ``runtime_config`` force_eou."""

    def _next(self, context: grpc.aio.ServicerContext) -> str:
        self.metadata.append({k: v for k, v in context.invocation_metadata()})
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        return step

    async def _fail_fast(self, step: str, context: grpc.aio.ServicerContext) -> None:
        if step == "unavailable":
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: unavailable")
        if step == "invalid":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "scripted: bad config")
        if step == "exhausted":
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "scripted: too many streams")
        if step == "hang":
            await asyncio.Event().wait()

    async def Recognize(
        self,
        request: rasr.RecognizeRequest,
        context: grpc.aio.ServicerContext,
    ) -> rasr.RecognizeResponse:
        await self._fail_fast(self._next(context), context)
        self.audio_bytes.append(len(request.audio))
        response = rasr.RecognizeResponse()
        response.results.add().alternatives.add(transcript=f"bytes={len(request.audio)}")
        return response

    async def GetRivaSpeechRecognitionConfig(
        self, request: rasr.RivaSpeechRecognitionConfigRequest, context: grpc.aio.ServicerContext
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        await self._fail_fast(self._next(context), context)
        response = rasr.RivaSpeechRecognitionConfigResponse()
        config = response.model_config.add(model_name="scripted-asr")
        config.parameters["language_code"] = "en-US"
        config.parameters["type"] = "online"
        return response

    async def StreamingRecognize(
        self,
        requests: AsyncIterator[rasr.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[rasr.StreamingRecognizeResponse]:
        step = self._next(context)
        await self._fail_fast(step, context)
        first = await anext(requests)
        interim = first.streaming_config.interim_results
        received = 0
        self.eou_at.append([])
        if step == "cut_after_results":
            yield rasr.StreamingRecognizeResponse(results=[_partial("partial one")])
            yield rasr.StreamingRecognizeResponse(results=[_final("final one")])
            await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: connection reset")
        async for request in requests:
            received += len(request.audio_content)
            if request.runtime_config.get("force_eou") == "true":
                self.eou_at[-1].append(received)
            if step == "cut_before_results" and received >= 32_000:
                self.audio_bytes.append(received)
                await context.abort(grpc.StatusCode.UNAVAILABLE, "scripted: connection reset")
        self.audio_bytes.append(received)
        if step == "slow":
            # A loaded server: it keeps answering (a response with no transcript every
            # 0.3 s, as Riva's audio_processed progress) but takes 3 s for the final.
            for tick in range(10):
                await asyncio.sleep(0.3)
                progress = rasr.StreamingRecognitionResult(audio_processed=tick * 0.01)
                yield rasr.StreamingRecognizeResponse(results=[progress])
        if interim:
            yield rasr.StreamingRecognizeResponse(results=[_partial("partial")])
        yield rasr.StreamingRecognizeResponse(
            results=[_final(f"bytes={received}", received / 32_000)]
        )


class _Health(health_grpc.HealthServicer):  # type: ignore[misc]  # untyped generated base
    async def Check(
        self,
        request: health_pb2.HealthCheckRequest,
        context: grpc.aio.ServicerContext,
    ) -> health_pb2.HealthCheckResponse:
        return health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)


async def start_scripted(
    script: Script,
    credentials: grpc.ServerCredentials | None = None,
) -> tuple[grpc.aio.Server, int]:
    """Serve ``script`` on 127.0.0.1 at a free port; returns the server and the port."""
    server = grpc.aio.server()
    rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(script, server)
    health_grpc.add_HealthServicer_to_server(_Health(), server)
    if credentials is None:
        port = server.add_insecure_port("127.0.0.1:0")
    else:
        port = server.add_secure_port("127.0.0.1:0", credentials)
    await server.start()
    return server, port
