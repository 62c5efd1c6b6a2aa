"""Offline ``Recognize``: a whole upload cut into utterances, decoded in parallel.

The same :class:`~.recognizer.Recognizer` as streaming cuts the audio (no interims, no
speculation), every utterance's final decodes on the shared pool at once, and the results
come back in order, one ``SpeechRecognitionResult`` per utterance.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid

import riva.client.proto.riva_asr_pb2 as rasr

from .audio_input import decode_audio_file
from .engine import Engine, Transcription
from .policy import RecognizerConfig, for_request
from .recognizer import Recognizer
from .requests import RequestOptions
from .responses import speech_results
from .results import FinalResult, JobKind
from .scheduler import DecodeScheduler
from .vad import SileroVAD

__all__ = ["recognize"]

logger = logging.getLogger("asr.embedded.offline")

SAMPLE_RATE = 16_000


async def recognize(
    request: rasr.RecognizeRequest,
    options: RequestOptions,
    *,
    engine: Engine,
    scheduler: DecodeScheduler,
) -> rasr.RecognizeResponse:
    """Recognise ``request.audio`` as ``options`` (parsed from its config) say.

    Raises:
        InvalidArgumentError: The audio cannot be decoded.
    """
    loop = asyncio.get_running_loop()
    samples = await loop.run_in_executor(
        None,
        functools.partial(
            decode_audio_file,
            request.audio,
            encoding=options.encoding,
            sample_rate=options.sample_rate,
            channels=options.channels,
        ),
    )
    probs = await loop.run_in_executor(None, SileroVAD().process, samples)
    rec = Recognizer(
        for_request(
            RecognizerConfig(endpoint=options.endpoint, interim_results=False, speculative=False),
            options.custom,
        )
    )
    jobs = rec.feed(samples, probs).jobs + rec.finish().jobs
    results = await asyncio.gather(
        *(
            scheduler.submit(
                JobKind.FINAL.value,
                functools.partial(
                    engine.transcribe,
                    job.audio,
                    word_timestamps=options.word_time_offsets,
                    boosts=options.boosts,
                    punctuate=options.punctuation,
                    alternatives=options.max_alternatives,
                    beam_size=options.custom.beam_size,
                ),
                _always,
            )
            for job in jobs
        )
    )
    finals: list[FinalResult] = []
    for job, result in zip(jobs, results, strict=True):
        finals += [
            r for r in rec.complete(job, result or Transcription("")) if isinstance(r, FinalResult)
        ]
    logger.debug(
        "recognized %.2f s of audio in %d utterance(s)", samples.size / SAMPLE_RATE, len(finals)
    )
    request_id = request.id.value or str(uuid.uuid4())
    return speech_results(finals, options, request_id, samples.size / SAMPLE_RATE)


def _always() -> bool:
    return True
