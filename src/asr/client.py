"""The asyncio client for a Riva ASR endpoint, on native ``grpc.aio``.

::

    async with RivaASRClient(uri="localhost:50051") as client:
        async for event in client.stream(chunks, RecognitionOptions()):
            print(event.type, event.text)

One client holds one channel and one circuit breaker for its endpoint; share it between
streams rather than making one per stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import grpc
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc
from pydantic import BaseModel, ConfigDict

from . import protocol
from .channel import DeliveredStatus, open_channel
from .errors import CircuitOpenError, from_grpc_error
from .events import Final, Partial, Progress
from .metrics import RivaMetrics
from .options import RecognitionOptions
from .replay import ReplayableAudio
from .resilience import breaker_guard, health_says_serving, new_breaker, retrying
from .settings import (
    BreakerSettings,
    KeepaliveSettings,
    RetrySettings,
    RivaSettings,
    keywords_given,
    with_overrides,
)
from .streaming import Attempt, ReplayingStreams

__all__ = ["HealthStatus", "ModelInfo", "RivaASRClient"]

logger = logging.getLogger("asr.client")

_ASR_SERVICE = "nvidia.riva.asr.RivaSpeechRecognition"

_PROBE_INTERVAL = 0.5
"""Seconds between health checks started by calls an open breaker refused."""


class HealthStatus(StrEnum):
    """What a health probe found (:meth:`RivaASRClient.health_status`)."""

    SERVING = "serving"
    NOT_SERVING = "not serving"
    """The server answered, and said it does not serve the service now."""
    UNREACHABLE = "unreachable"
    """No answer: nothing listens there, TLS failed, or the server did not reply in time."""


class ModelInfo(BaseModel):
    """A model the server offers (from ``GetRivaSpeechRecognitionConfig``)."""

    model_config = ConfigDict(frozen=True)

    name: str
    parameters: dict[str, str]

    @property
    def language_code(self) -> str | None:
        return self.parameters.get("language_code")

    @property
    def streaming(self) -> bool:
        return self.parameters.get("streaming", "").lower() == "true" or (
            self.parameters.get("type") == "online"
        )


class RivaASRClient(ReplayingStreams):
    """Async client for the Riva ``RivaSpeechRecognition`` service.

    Every keyword from ``use_ssl`` on sets the :class:`~asr.settings.RivaSettings` field
    of its name (documented there, with its default) over ``settings``; ``None`` keeps
    the value ``settings`` has. A group (``retry``, ``breaker``, ``keepalive``) replaces
    that of ``settings`` whole: ``retry=RetrySettings(attempts=1)``.

    Args:
        uri: The endpoint, as :attr:`RivaSettings.uri <asr.settings.RivaSettings>`.
        settings: Connection settings; read from ``RIVA_*`` variables when omitted.
        metrics: Where call latency, errors, retries and breaker state are recorded;
            ``None`` records nothing.
    """

    def __init__(
        self,
        uri: str | None = None,
        *,
        settings: RivaSettings | None = None,
        metrics: RivaMetrics | None = None,
        use_ssl: bool | None = None,
        ssl_root_cert: Path | str | None = None,
        ssl_client_cert: Path | str | None = None,
        ssl_client_key: Path | str | None = None,
        ssl_target_name: str | None = None,
        metadata: str | Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        timeout: float | None = None,
        stream_timeout: float | None = None,
        max_message_bytes: int | None = None,
        lb_policy: str | None = None,
        health_check: bool | None = None,
        retry: RetrySettings | None = None,
        breaker: BreakerSettings | None = None,
        keepalive: KeepaliveSettings | None = None,
    ) -> None:
        # The keywords that name a settings field, as given (locals() before any other).
        given = keywords_given(RivaSettings, locals())
        self.settings = with_overrides(settings or RivaSettings(), **given)
        self.breaker = new_breaker(self.settings.uri, self.settings.breaker)
        self.metrics = metrics
        if metrics is not None:
            metrics.watch(self.breaker, self.settings.uri)
        self._channel: grpc.aio.Channel | None = None
        self._asr: rasr_grpc.RivaSpeechRecognitionStub | None = None
        self._health: health_grpc.HealthStub | None = None
        self._probe: asyncio.Task[HealthStatus] | None = None
        self._probed_at = -_PROBE_INTERVAL

    async def __aenter__(self) -> Self:
        self._connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the channel; streams still open are cancelled."""
        channel, self._channel = self._channel, None
        self._asr = self._health = None
        if self._probe is not None:
            self._probe.cancel()
        if channel is not None:
            await channel.close()

    @property
    def retry(self) -> RetrySettings:
        """How often calls and streams are tried (``settings.retry``)."""
        return self.settings.retry

    def _attempt_guard(self) -> contextlib.AbstractContextManager[None]:
        return self._guarded()

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """Run the block under the breaker. A call the open breaker refuses starts a health
        check, so the breaker lets a trial through as soon as the server says SERVING
        again, not only after its reset timeout."""
        try:
            with breaker_guard(self.breaker):
                yield
        except CircuitOpenError:
            self._probe_health()
            raise

    def _probe_health(self) -> None:
        now = time.monotonic()
        running = self._probe is not None and not self._probe.done()
        if running or now - self._probed_at < _PROBE_INTERVAL:
            return
        self._probed_at = now
        self._probe = asyncio.get_running_loop().create_task(self.health_status())
        # Retrieved here so that a probe cut short by close() is not reported as lost.
        self._probe.add_done_callback(lambda task: task.cancelled() or task.exception())

    def _connect(self) -> rasr_grpc.RivaSpeechRecognitionStub:
        if self._asr is None:
            self._channel = open_channel(self.settings)
            self._asr = rasr_grpc.RivaSpeechRecognitionStub(self._channel)
            self._health = health_grpc.HealthStub(self._channel)
        return self._asr

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return self.settings.metadata

    def _observe(self, method: str, started: float, code: grpc.StatusCode) -> None:
        if self.metrics is not None:
            self.metrics.call(method, time.perf_counter() - started, code.name)

    def _on_retry(self, method: str) -> Callable[[], None] | None:
        metrics = self.metrics
        return None if metrics is None else (lambda: metrics.retry(method))

    async def _unary(self, name: str, method: Any, request: Any, timeout: float | None) -> Any:
        """Call a unary RPC under the breaker, with deadline and retries."""
        self._connect()
        async for attempt in retrying(self.retry, on_retry=self._on_retry(name)):
            with attempt, self._guarded():
                started = time.perf_counter()
                try:
                    response = await method(
                        request, timeout=timeout or self.settings.timeout, metadata=self._metadata
                    )
                except grpc.aio.AioRpcError as exc:
                    self._observe(name, started, exc.code())
                    raise from_grpc_error(exc) from exc
                self._observe(name, started, grpc.StatusCode.OK)
                return response
        raise AssertionError("unreachable: tenacity re-raises the last error")

    async def recognize(
        self,
        audio: bytes,
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Final]:
        """Recognise a whole recording at once (Riva ``Recognize``).

        Args:
            audio: Encoded audio: raw samples as ``options`` describe, or a whole WAV file.
            options: What to recognise; defaults to :class:`RecognitionOptions`.
            timeout: Deadline in seconds; defaults to ``settings.timeout``.

        Returns:
            One :class:`Final` per recognised utterance, in order.
        """
        request = rasr.RecognizeRequest(
            config=protocol.recognition_config(options or RecognitionOptions()), audio=audio
        )
        response = await self._unary("Recognize", self._connect().Recognize, request, timeout)
        return protocol.finals_from_recognize_response(response)

    async def list_models(
        self,
        model_name: str = "",
        *,
        timeout: float | None = None,
    ) -> list[ModelInfo]:
        """The ASR models the server offers (``GetRivaSpeechRecognitionConfig``)."""
        request = rasr.RivaSpeechRecognitionConfigRequest(model_name=model_name)
        response = await self._unary(
            "GetRivaSpeechRecognitionConfig",
            self._connect().GetRivaSpeechRecognitionConfig,
            request,
            timeout,
        )
        return [
            ModelInfo(name=c.model_name, parameters=dict(c.parameters))
            for c in response.model_config
        ]

    async def health(self, service: str = _ASR_SERVICE, *, timeout: float | None = None) -> bool:
        """Whether the server reports ``service`` as SERVING (gRPC health protocol).

        Never raises for an unreachable or failing server, and does not count towards the
        circuit breaker: it is the probe used to find out.
        """
        return await self.health_status(service, timeout=timeout) is HealthStatus.SERVING

    async def health_status(
        self, service: str = _ASR_SERVICE, *, timeout: float | None = None
    ) -> HealthStatus:
        """What the server says of ``service``, or that it could not be asked.

        Like :meth:`health`, never raises for a failing server and leaves the breaker alone.
        """
        self._connect()
        assert self._health is not None
        try:
            response = await self._health.Check(
                health_pb2.HealthCheckRequest(service=service),
                timeout=timeout or min(self.settings.timeout, 5.0),
                metadata=self._metadata,
            )
        except grpc.aio.AioRpcError as exc:
            logger.info("health check of %s failed: %s", self.settings.uri, exc.code().name)
            if exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                return HealthStatus.UNREACHABLE
            return HealthStatus.NOT_SERVING
        if response.status == health_pb2.HealthCheckResponse.SERVING:
            health_says_serving(self.breaker)
            return HealthStatus.SERVING
        return HealthStatus.NOT_SERVING

    def _attempts(self, options: RecognitionOptions, timeout: float | None) -> Attempt:
        stub = self._connect()
        config = protocol.streaming_config(options)
        return lambda source: self._stream_once(stub, source, config, timeout)

    async def _stream_once(
        self,
        stub: rasr_grpc.RivaSpeechRecognitionStub,
        source: ReplayableAudio,
        config: rasr.StreamingRecognitionConfig,
        timeout: float | None,
    ) -> AsyncIterator[Partial | Final | Progress]:
        call = stub.StreamingRecognize(
            timeout=timeout or self.settings.stream_timeout, metadata=self._metadata
        )

        async def write() -> None:
            # Our own writer task rather than a request iterator handed to grpc: grpc's
            # consumer task outlives a call that ended early (server gone) while it waits
            # for the next chunk; this one is cancelled in `finally` below, always.
            try:
                await call.write(rasr.StreamingRecognizeRequest(streaming_config=config))
                async for item in source.chunks():
                    await call.write(protocol.audio_request(item))
                await call.done_writing()
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the call ended; its status is read on the response side
            except Exception as exc:  # the caller's audio source failed: end the call
                source.error = exc
                call.cancel()

        writer = asyncio.create_task(write(), name="asr-stream-writer")
        delivered = DeliveredStatus(call)
        results_seen = False
        started: float | None = time.perf_counter()  # until the first response
        try:
            async for response in call:
                if started is not None:
                    self._observe("StreamingRecognize", started, grpc.StatusCode.OK)
                    started = None
                events = protocol.events_from_response(response)
                if events and not results_seen:
                    results_seen = True
                    source.settle()
                for event in events:
                    yield event
                if not events:
                    yield Progress(audio_processed=protocol.audio_processed(response))
        except grpc.aio.AioRpcError as exc:
            if source.error is not None:
                raise source.error from None
            corrected = delivered.correct(exc)
            self._observe("StreamingRecognize", started or time.perf_counter(), corrected.code())
            raise from_grpc_error(corrected, results_seen=results_seen) from exc
        except asyncio.CancelledError:
            if source.error is not None:
                raise source.error from None
            raise
        finally:
            call.cancel()
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
        if source.error is not None:
            raise source.error
