"""The ``nvidia.riva.asr.RivaSpeechRecognition`` servicer on ``grpc.aio``.

Thin I/O: it parses requests (:mod:`.requests`), decodes audio (:mod:`.audio_input`),
scores it with the VAD (:mod:`.vad`), lets the sans-I/O :class:`~.recognizer.Recognizer`
decide what to decode, runs decodes on the shared :class:`~.scheduler.DecodeScheduler` and
writes responses. Per-stream state lives in a :class:`StreamSession`, never on the servicer.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass

import grpc
import riva.client.proto.riva_asr_pb2 as rasr
import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

from ..errors import InvalidArgumentError
from . import offline
from .audio_input import StreamAudioDecoder
from .catalog import DEFAULT_MODEL_ALIASES, ModelCatalog
from .endpointer import EndpointParams
from .engine import Engine, Float32Array
from .policy import PARTIAL_INTERVAL_MS, RecognizerConfig, for_request
from .recognizer import Recognizer
from .requests import RequestOptions, parse_config, parse_runtime_config
from .responses import final_result, interim_result, progress_response
from .results import DecodeJob, InterimResult, JobKind, Result, Step
from .scheduler import DecodeScheduler
from .vad import SileroVAD

__all__ = ["RivaASRServicer", "ServicerConfig", "StreamSession"]

logger = logging.getLogger("asr.embedded.servicer")

_stream_ids = itertools.count(1)

PREVIOUS_TEXT_CHARS = 1000
"""Characters of the session's finals kept as context; the engine uses the last words."""

PROGRESS_INTERVAL = 1.0
"""Seconds between the responses without transcript that a half-closed stream gets while
its finals wait for the decode pool, as long as the pool is moving: a client tells a slow
server (progress) from a stalled one (silence)."""


@dataclass(frozen=True, slots=True)
class ServicerConfig:
    """Server-wide recognition settings.

    Attributes:
        max_streams: Concurrent ``StreamingRecognize`` calls; more get RESOURCE_EXHAUSTED.
        partial_interval_ms: New speech audio between two interim results.
        endpoint: Endpointing defaults for fields a request leaves at 0.
        speculative: Decode finals speculatively at the first-pass end of utterance.
        model_aliases: Model names besides the engine's own that select it (a NIM's
            model names, so frameworks' defaults work unchanged).
    """

    max_streams: int = 8
    partial_interval_ms: int = PARTIAL_INTERVAL_MS
    endpoint: EndpointParams = EndpointParams()
    speculative: bool = True
    model_aliases: tuple[str, ...] = DEFAULT_MODEL_ALIASES


class _Abort(Exception):
    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class StreamSession:
    """One ``StreamingRecognize`` call: its audio decoder, VAD, recogniser and decodes."""

    def __init__(
        self,
        *,
        engine: Engine,
        scheduler: DecodeScheduler,
        catalog: ModelCatalog,
        config: ServicerConfig,
    ) -> None:
        self.id = next(_stream_ids)
        self.log = logging.LoggerAdapter(logger, {"stream": self.id})
        self._engine = engine
        self._scheduler = scheduler
        self._catalog = catalog
        self._config = config
        self._outbox: asyncio.Queue[rasr.StreamingRecognizeResponse | _Abort | None] = (
            asyncio.Queue()
        )
        self._tasks: set[asyncio.Task[None]] = set()
        self._changed = asyncio.Event()
        self._closed = False
        self.options: RequestOptions | None = None
        self.request_id = ""
        """The client's request ``id``, echoed on every response (a UUID if it sent none)."""
        self.previous_text: str | None = None
        """The session's finals so far: the next decodes' context
        (``condition_on_previous_text``)."""
        self._vad: list[float] | None = None
        self.recognizer: Recognizer | None = None

    async def run(
        self,
        requests: AsyncIterable[rasr.StreamingRecognizeRequest],
    ) -> AsyncIterator[rasr.StreamingRecognizeResponse]:
        """Yield the responses for ``requests``.

        Raises:
            _Abort: The stream must end with a non-OK status.
        """
        iterator = aiter(requests)
        first = await anext(iterator, None)
        if first is None:
            return
        if not first.HasField("streaming_config"):
            raise _Abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                "the first StreamingRecognizeRequest must carry streaming_config",
            )
        streaming = first.streaming_config
        self.request_id = first.id.value or str(uuid.uuid4())
        try:
            parse_runtime_config(first.runtime_config)  # nothing to end yet, but checked
            options = parse_config(
                streaming.config,
                streaming=True,
                catalog=self._catalog,
                defaults=self._config.endpoint,
            )
        except InvalidArgumentError as exc:
            raise _Abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message) from exc
        self.options = options
        if options.custom.vad_probabilities:
            self._vad = []
        self.recognizer = Recognizer(
            for_request(
                RecognizerConfig(
                    endpoint=options.endpoint,
                    interim_results=streaming.interim_results,
                    partial_interval_ms=self._config.partial_interval_ms,
                    speculative=self._config.speculative,
                ),
                options.custom,
            )
        )
        self.log.debug("stream %d started: %s", self.id, options)
        reader = asyncio.create_task(self._read(iterator), name=f"asr-stream-{self.id}")
        try:
            while True:
                item = await self._outbox.get()
                if item is None:
                    break
                if isinstance(item, _Abort):
                    raise item
                yield item
        finally:
            self._closed = True
            reader.cancel()
            for task in list(self._tasks):
                task.cancel()
            self.log.debug("stream %d closed", self.id)

    async def _read(self, requests: AsyncIterator[rasr.StreamingRecognizeRequest]) -> None:
        assert self.options is not None and self.recognizer is not None
        rec = self.recognizer
        decoder = StreamAudioDecoder(
            encoding=self.options.encoding,
            sample_rate=self.options.sample_rate,
            channels=self.options.channels,
        )
        vad = SileroVAD()
        try:
            async for request in requests:
                if request.HasField("streaming_config"):
                    raise InvalidArgumentError(
                        "streaming_config may only be sent in the first request"
                    )
                # Riva 2.27 runtime_config {"force_eou": "true"}: end the utterance after
                # this request's audio, keep the stream open. The response without
                # transcript acknowledges the cut, whether or not a final follows.
                force = parse_runtime_config(request.runtime_config)
                samples = decoder.feed(request.audio_content)
                if samples.size:
                    self._handle(rec.feed(samples, self._score(vad, samples)))
                if force:
                    self._handle(rec.force_end())
                    self._outbox.put_nowait(
                        progress_response(rec.audio_processed, self.request_id, self._take_vad())
                    )
            samples = decoder.finish()
            if samples.size:
                self._handle(rec.feed(samples, self._score(vad, samples)))
            self._handle(rec.finish())
            self.log.debug(
                "stream %d half-closed after %.2f s of audio", self.id, rec.audio_processed
            )
            await self._drain(rec)
            self._outbox.put_nowait(None)
        except InvalidArgumentError as exc:
            self._outbox.put_nowait(_Abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.log.exception("stream %d failed", self.id)
            self._outbox.put_nowait(_Abort(grpc.StatusCode.INTERNAL, f"server error: {exc}"))

    def _score(self, vad: SileroVAD, samples: Float32Array) -> Float32Array:
        probs = vad.process(samples)
        if self._vad is not None:
            self._vad.extend(float(p) for p in probs)
        return probs

    def _take_vad(self) -> list[float] | None:
        """The VAD probabilities since the last response, for ``pipeline_states``."""
        if self._vad is None:
            return None
        taken, self._vad = self._vad, []
        return taken

    async def _drain(self, rec: Recognizer) -> None:
        """Wait for the last finals, showing progress while the decode pool moves."""
        loop = asyncio.get_running_loop()
        seen = self._scheduler.progress
        beat = loop.time() + PROGRESS_INTERVAL
        while not rec.idle:
            changed = self._changed
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout_at(beat):
                    await changed.wait()
            if loop.time() >= beat and not rec.idle:
                beat = loop.time() + PROGRESS_INTERVAL
                if self._scheduler.progress != seen:
                    seen = self._scheduler.progress
                    self._outbox.put_nowait(
                        progress_response(rec.audio_processed, self.request_id, self._take_vad())
                    )

    def _handle(self, step: Step) -> None:
        for job in step.jobs:
            task = asyncio.create_task(self._decode(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._send(step.results)

    def _send(self, results: list[Result]) -> None:
        assert self.options is not None
        for result in results:
            vad = self._take_vad()
            if isinstance(result, InterimResult):
                self._outbox.put_nowait(interim_result(result, self.options, self.request_id, vad))
            else:
                self.log.debug(
                    "stream %d final %d: %r", self.id, result.utterance, result.transcription.text
                )
                if self.options.custom.condition_on_previous_text:
                    # The session's transcript so far (the engine keeps its last words):
                    # more context than one short final, which may be misheard.
                    text = result.transcription.text
                    self.previous_text = " ".join(filter(None, (self.previous_text, text)))[
                        -PREVIOUS_TEXT_CHARS:
                    ]
                self._outbox.put_nowait(final_result(result, self.options, self.request_id, vad))

    def _wanted(self, job: DecodeJob) -> bool:
        assert self.recognizer is not None
        return not self._closed and self.recognizer.wanted(job)

    async def _decode(self, job: DecodeJob) -> None:
        assert self.options is not None and self.recognizer is not None
        draft = job.kind is JobKind.PARTIAL
        run = functools.partial(
            self._engine.transcribe,
            job.audio,
            word_timestamps=self.options.word_time_offsets,
            boosts=self.options.boosts,
            draft=draft,
            punctuate=self.options.punctuation,
            alternatives=1 if draft else self.options.max_alternatives,
            previous_text=self.previous_text,
            beam_size=self.options.custom.beam_size,
        )
        queued = time.perf_counter()
        try:
            result = await self._scheduler.submit(
                job.kind.value,
                run,
                functools.partial(self._wanted, job),
                # One partial per stream queued or running (the scheduler's lanes).
                lane=self if draft else None,
            )
        except Exception as exc:
            self.log.exception("stream %d: decode failed", self.id)
            self._outbox.put_nowait(_Abort(grpc.StatusCode.INTERNAL, f"decode failed: {exc}"))
            return
        self.log.debug(
            "stream %d: %s decode of utterance %d (%.2f s of audio) %s after %.3f s: %r",
            self.id,
            job.kind.name.lower(),
            job.utterance,
            job.audio.size / 16_000,
            "dropped" if result is None else "done",
            time.perf_counter() - queued,
            result.text if result is not None else None,
        )
        if result is not None and not self._closed:
            self._send(self.recognizer.complete(job, result))
        changed, self._changed = self._changed, asyncio.Event()
        changed.set()


class RivaASRServicer(rasr_grpc.RivaSpeechRecognitionServicer):  # type: ignore[misc]
    """``StreamingRecognize``, ``Recognize`` and ``GetRivaSpeechRecognitionConfig``.

    Args:
        engine: The recogniser, shared by all calls.
        scheduler: The decode pool, shared by all calls.
        config: Capacity and endpointing defaults.
    """

    def __init__(
        self, *, engine: Engine, scheduler: DecodeScheduler, config: ServicerConfig
    ) -> None:
        self._engine = engine
        self._scheduler = scheduler
        self._config = config
        self.catalog = ModelCatalog(engine.name, config.model_aliases)
        self.active_streams = 0

    async def StreamingRecognize(
        self,
        request_iterator: AsyncIterable[rasr.StreamingRecognizeRequest],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[rasr.StreamingRecognizeResponse]:
        if self.active_streams >= self._config.max_streams:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"the server is at its limit of {self._config.max_streams} concurrent "
                "streams; retry later",
            )
        self.active_streams += 1
        session = StreamSession(
            engine=self._engine,
            scheduler=self._scheduler,
            catalog=self.catalog,
            config=self._config,
        )
        try:
            async for response in session.run(request_iterator):
                yield response
        except _Abort as exc:
            session.log.info("stream %d ends with %s: %s", session.id, exc.code.name, exc.details)
            await context.abort(exc.code, exc.details)
        finally:
            self.active_streams -= 1

    async def Recognize(
        self, request: rasr.RecognizeRequest, context: grpc.aio.ServicerContext
    ) -> rasr.RecognizeResponse:
        try:
            options = parse_config(
                request.config,
                streaming=False,
                catalog=self.catalog,
                defaults=self._config.endpoint,
            )
            return await offline.recognize(
                request, options, engine=self._engine, scheduler=self._scheduler
            )
        except InvalidArgumentError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, exc.message)
            raise  # abort raises; this line is for the type checker

    async def GetRivaSpeechRecognitionConfig(
        self,
        request: rasr.RivaSpeechRecognitionConfigRequest,
        context: grpc.aio.ServicerContext,
    ) -> rasr.RivaSpeechRecognitionConfigResponse:
        return self.catalog.configs(self._config.endpoint, request.model_name)
