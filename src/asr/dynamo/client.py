"""The asyncio client for ASR workers on Dynamo, with :class:`~asr.client.RivaASRClient`'s
``stream()``::

    async with DynamoASRClient(endpoint="asr.recognizer.stream") as client:
        async for event in client.stream(chunks, RecognitionOptions()):
            print(event.type, event.text)

A stream is one session on one worker instance (:mod:`.wire`): its ``open`` goes to the
least loaded instance and every later call of it to that same instance
(:class:`~.routing.SessionRouter`). A failure before the first result is retried on another
instance by replaying the audio (:class:`~asr.replay.ReplayableAudio`); after results it
raises :class:`~asr.errors.StreamInterruptedError`, as over gRPC.

It satisfies :class:`asr.backend.SpeechBackend`, so the gateway runs on it unchanged
(``ASR_SERVER_BACKEND=dynamo``): :meth:`~DynamoASRClient.health` asks the workers' load
reports, :meth:`~DynamoASRClient.recognize` streams a whole recording through a session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Self

import grpc
import riva.client.proto.riva_asr_pb2 as rasr

from .. import protocol
from ..errors import DeadlineExceededError, from_grpc_error
from ..events import Final, Partial, Progress
from ..options import RecognitionOptions
from ..replay import ReplayableAudio
from ..settings import RetrySettings, keywords_given, with_overrides
from ..streaming import Attempt, ReplayingStreams
from . import wire
from .routing import SessionRouter
from .runtime import Context, new_runtime
from .settings import DynamoSettings

__all__ = ["DynamoASRClient", "DynamoSettings"]

logger = logging.getLogger("asr.dynamo.client")

RECOGNIZE_CHUNK_BYTES = 32_000
"""Bytes per audio call of :meth:`DynamoASRClient.recognize`: 1 s of 16 kHz PCM16, so a
recording costs one acknowledged call per second of audio, not ten."""


@dataclass(slots=True)
class _Attempt:
    """One try of a stream: its session, instance and what went wrong on the write side."""

    session: str
    instance: int
    context: Any
    write_failure: wire.WireStatus | None = None


class DynamoASRClient(ReplayingStreams):
    """Async client for the ASR workers of one Dynamo endpoint.

    Every keyword after ``settings`` sets the :class:`DynamoSettings` field of its name
    (documented there, with its default) over ``settings``; ``None`` keeps the value
    ``settings`` has.

    Args:
        endpoint: ``namespace.component.endpoint`` the workers serve.
        settings: Where the workers are; read from ``ASR_DYNAMO_*`` variables when omitted.
    """

    def __init__(
        self,
        endpoint: str | None = None,
        *,
        settings: DynamoSettings | None = None,
        discovery_backend: str | None = None,
        request_plane: str | None = None,
        connect_timeout: float | None = None,
        call_timeout: float | None = None,
        stream_timeout: float | None = None,
        retry: RetrySettings | None = None,
        load_interval: float | None = None,
    ) -> None:
        # The keywords that name a settings field, as given (locals() before any other).
        given = keywords_given(DynamoSettings, locals())
        self.settings = with_overrides(settings or DynamoSettings(), **given)
        self.router = SessionRouter()
        self._runtime: Any = None
        self._client: Any = None
        self._poller: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def connect(self) -> None:
        """Join the Dynamo runtime and wait until a worker serves the endpoint.

        Raises:
            DeadlineExceededError: No worker appeared within ``connect_timeout``.
        """
        if self._client is not None:
            return
        backend = self.settings.discovery_backend or os.environ.get("DYN_DISCOVERY_BACKEND", "etcd")
        plane = self.settings.request_plane or os.environ.get("DYN_REQUEST_PLANE", "tcp")
        self._runtime = new_runtime(backend, plane)
        try:
            self._client = await self._runtime.endpoint(self.settings.endpoint).client()
            async with asyncio.timeout(self.settings.connect_timeout):
                await self._client.wait_for_instances()
        except TimeoutError:
            await self.close()
            raise DeadlineExceededError(
                f"no ASR worker serves {self.settings.endpoint} after "
                f"{self.settings.connect_timeout:g}s"
            ) from None
        await self.refresh()
        self._poller = asyncio.create_task(self._poll(), name="asr-dynamo-load")

    async def close(self) -> None:
        """Leave the runtime; streams still open fail."""
        poller, self._poller = self._poller, None
        if poller is not None:
            poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poller
        runtime, self._runtime, self._client = self._runtime, None, None
        if runtime is not None:
            runtime.shutdown()

    @property
    def instances(self) -> list[int]:
        """The worker instances discovery lists now."""
        return sorted(self._client.instance_ids()) if self._client is not None else []

    async def refresh(self, *, timeout: float | None = None) -> dict[int, wire.WorkerLoad]:
        """Ask every instance for its load now and route by the answers.

        Args:
            timeout: Seconds each instance gets to answer; ``call_timeout`` when ``None``.

        Returns:
            The load each instance that answered reported.
        """
        self.router.set_instances(self.instances)
        ids = self.router.instances
        answers = await asyncio.gather(
            *(self._call(i, wire.load_request(), timeout=timeout) for i in ids),
            return_exceptions=True,
        )
        loads: dict[int, wire.WorkerLoad] = {}
        for instance, answer in zip(ids, answers, strict=True):
            if isinstance(answer, dict) and "load" in answer:
                loads[instance] = wire.WorkerLoad.from_frame(answer)
                self.router.report(instance, loads[instance])
            elif isinstance(answer, wire.WireStatus):
                self._note_failure(instance, answer)
            elif isinstance(answer, BaseException):
                raise answer
        return loads

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.settings.load_interval)
            try:
                await self.refresh()
            except Exception:  # a poll that failed is tried again at the next interval
                logger.exception("load poll failed")

    def _note_failure(self, instance: int, status: wire.WireStatus) -> None:
        if status.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            logger.info("instance %x failed (%s): passed over", instance, status.details())
            self.router.failed(instance)

    async def _call(
        self, instance: int, frame: wire.Frame, *, timeout: float | None = None
    ) -> wire.Frame:
        """A call answered by one frame; its error frame or runtime error as WireStatus."""
        if self._client is None:
            raise wire.WireStatus(grpc.StatusCode.UNAVAILABLE, "the client is closed")
        seconds = timeout or self.settings.call_timeout
        try:
            async with asyncio.timeout(seconds):
                replies = await self._client.direct(frame, instance, annotated=False)
                reply: wire.Frame | None = await anext(aiter(replies), None)
        except TimeoutError:
            raise wire.WireStatus(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"no answer within {seconds:g}s"
            ) from None
        except Exception as exc:
            raise wire.runtime_status(exc) from exc
        if reply is None:
            raise wire.WireStatus(grpc.StatusCode.UNAVAILABLE, "the worker sent no answer")
        if "error" in reply:
            raise wire.WireStatus.from_frame(reply)
        return reply

    async def health(self, *, timeout: float | None = None) -> bool:
        """Whether some worker instance serves new sessions now, from the load reports
        every instance is asked for (:meth:`refresh`).

        Never raises for unreachable or failing workers: it is the gateway's readiness
        probe. A draining worker (``serving`` false) does not count; one at its stream
        limit does (it is busy, not down).

        Args:
            timeout: Seconds each instance gets to answer; ``min(call_timeout, 5)``
                when ``None``.
        """
        if self._client is None:
            return False
        try:
            loads = await self.refresh(timeout=timeout or min(self.settings.call_timeout, 5.0))
        except Exception as exc:  # a probe reports, it does not fail
            logger.info("health check of %s failed: %s", self.settings.endpoint, exc)
            return False
        return any(load.serving for load in loads.values())

    async def recognize(
        self,
        audio: bytes,
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Final]:
        """Recognise a whole recording, streamed through one session as fast as the
        worker takes it (the workers have no offline call): the finals, in order.

        Args:
            audio: Raw samples as ``options`` describe, or a whole WAV, FLAC or Ogg Opus
                file (the worker's stream decoder reads the header).
            options: What to recognise; interim results are not asked for.
            timeout: Deadline in seconds for the whole stream; ``stream_timeout`` when
                ``None``.
        """
        options = (options or RecognitionOptions()).model_copy(update={"interim_results": False})
        size = RECOGNIZE_CHUNK_BYTES
        chunks = (audio[i : i + size] for i in range(0, len(audio), size))
        return [
            event
            async for event in self.stream(chunks, options, timeout=timeout)
            if isinstance(event, Final)
        ]

    @property
    def retry(self) -> RetrySettings:
        """How often a stream is tried, on another instance each time (``settings.retry``)."""
        return self.settings.retry

    def _attempts(self, options: RecognitionOptions, timeout: float | None) -> Attempt:
        """Attempts of a stream (as :meth:`asr.client.RivaASRClient.stream`, same events
        and errors) on a worker not tried yet, within one deadline for them all."""
        config = rasr.StreamingRecognizeRequest(
            streaming_config=protocol.streaming_config(options)
        ).SerializeToString()
        deadline = asyncio.get_running_loop().time() + (timeout or self.settings.stream_timeout)
        tried: set[int] = set()
        return lambda source: self._stream_once(source, config, deadline, tried)

    def _begin(self, tried: set[int]) -> _Attempt:
        self.router.set_instances(self.instances)
        instance = self.router.choose(exclude=tried)
        if instance is None and tried:
            instance = self.router.choose()
        if instance is None:
            raise from_grpc_error(
                wire.WireStatus(
                    grpc.StatusCode.UNAVAILABLE,
                    f"no ASR worker instance of {self.settings.endpoint} is up",
                )
            )
        tried.add(instance)
        attempt = _Attempt(session=uuid.uuid4().hex, instance=instance, context=Context())
        self.router.bind(attempt.session, instance)
        return attempt

    async def _stream_once(
        self, source: ReplayableAudio, config: bytes, deadline: float, tried: set[int]
    ) -> AsyncIterator[Partial | Final | Progress]:
        attempt = self._begin(tried)
        writer: asyncio.Task[None] | None = None
        results_seen = False
        ended = False
        try:
            try:
                opened = await self._client.direct(
                    wire.open_request(attempt.session, config),
                    attempt.instance,
                    annotated=False,
                    context=attempt.context,
                )
            except Exception as exc:
                raise wire.runtime_status(exc) from exc
            frames = aiter(opened)
            first = await self._next_frame(frames, attempt, deadline)
            if first is None or "opened" not in first:
                raise wire.WireStatus.from_frame(first or {"error": {"code": "UNAVAILABLE"}})
            writer = asyncio.create_task(self._write(source, attempt), name="asr-dynamo-writer")
            while (frame := await self._next_frame(frames, attempt, deadline)) is not None:
                if "error" in frame:
                    raise wire.WireStatus.from_frame(frame)
                if "end" in frame:
                    ended = True
                    break
                response = rasr.StreamingRecognizeResponse.FromString(frame["response"])
                events = protocol.events_from_response(response)
                if events and not results_seen:
                    results_seen = True
                    source.settle()
                for event in events:
                    yield event
                if not events:
                    yield Progress(audio_processed=protocol.audio_processed(response))
            if not ended:  # stopped from our side: the writer says why
                if source.error is not None:
                    raise source.error
                raise attempt.write_failure or wire.WireStatus(
                    grpc.StatusCode.UNAVAILABLE, "the worker ended the stream without its end"
                )
        except wire.WireStatus as status:
            if source.error is not None:
                raise source.error from None
            self._note_failure(attempt.instance, status)
            raise from_grpc_error(status, results_seen=results_seen) from status
        finally:
            if not ended:
                attempt.context.stop_generating()
            if writer is not None:
                writer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await writer
            self.router.release(attempt.session)
        if source.error is not None:
            raise source.error

    async def _next_frame(
        self, frames: AsyncIterator[wire.Frame], attempt: _Attempt, deadline: float
    ) -> wire.Frame | None:
        try:
            async with asyncio.timeout_at(deadline):
                return await anext(frames)
        except StopAsyncIteration:
            return None
        except TimeoutError:
            raise wire.WireStatus(
                grpc.StatusCode.DEADLINE_EXCEEDED, "the stream ran past its deadline"
            ) from None
        except Exception as exc:
            raise wire.runtime_status(exc) from exc

    async def _write(self, source: ReplayableAudio, attempt: _Attempt) -> None:
        """Send the audio, one acknowledged call per chunk, then half-close. Calls are
        sequential, so the worker gets them in order on its one session."""
        seq = 0
        try:
            async for item in source.chunks():
                request = protocol.audio_request(item).SerializeToString()
                await self._call(
                    attempt.instance, wire.audio_request(attempt.session, seq, request)
                )
                seq += 1
            await self._call(attempt.instance, wire.close_request(attempt.session))
        except wire.WireStatus as status:
            attempt.write_failure = status
            attempt.context.stop_generating()
        except Exception as exc:  # the caller's audio source failed: end the session
            source.error = exc
            attempt.context.stop_generating()
