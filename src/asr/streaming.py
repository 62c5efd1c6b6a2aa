"""``stream()`` as both clients offer it: one attempt at a time, the audio replayed.

:class:`~asr.client.RivaASRClient` (one gRPC call per attempt) and
:class:`~asr.dynamo.DynamoASRClient` (one worker session per attempt) differ only in how
one attempt runs. What is common, the retry loop that replays the audio of a stream that
failed before its first result (:class:`~asr.replay.ReplayableAudio`) and the typed
``progress`` overloads, is written once here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Literal, overload

from .errors import StreamInterruptedError
from .events import Final, Partial, Progress
from .markers import AudioItem
from .options import RecognitionOptions
from .replay import ReplayableAudio
from .resilience import retrying
from .settings import RetrySettings

__all__ = ["Attempt", "ReplayingStreams"]

Attempt = Callable[[ReplayableAudio], AsyncIterator[Partial | Final | Progress]]
"""One try of a stream: sends the audio ``source`` gives, yields what comes back."""


class ReplayingStreams:
    """The ``stream()`` of a client whose attempts :meth:`_attempts` makes.

    Subclasses give :attr:`retry` and :meth:`_attempts`; they may guard each attempt (a
    circuit breaker) and count retries.
    """

    @property
    def retry(self) -> RetrySettings:
        """How often a stream is tried, and how much of its audio is kept for a replay."""
        raise NotImplementedError

    def _attempts(self, options: RecognitionOptions, timeout: float | None) -> Attempt:
        """The attempt function of one stream, holding what its attempts share."""
        raise NotImplementedError

    def _attempt_guard(self) -> contextlib.AbstractContextManager[None]:
        """Entered around each attempt (the Riva client's circuit breaker)."""
        return contextlib.nullcontext()

    def _on_retry(self, method: str) -> Callable[[], None] | None:
        """Called before each repeated attempt of ``method`` (a metrics hook)."""
        return None

    @overload
    def stream(
        self,
        audio: AsyncIterable[AudioItem] | Iterable[AudioItem],
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
        progress: Literal[False] = False,
    ) -> AsyncIterator[Partial | Final]: ...

    @overload
    def stream(
        self,
        audio: AsyncIterable[AudioItem] | Iterable[AudioItem],
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
        progress: Literal[True],
    ) -> AsyncIterator[Partial | Final | Progress]: ...

    async def stream(
        self,
        audio: AsyncIterable[AudioItem] | Iterable[AudioItem],
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
        progress: bool = False,
    ) -> AsyncIterator[Partial | Final | Progress]:
        """Stream audio and yield results as they arrive.

        The stream ends after ``audio`` is exhausted and the server has sent its last
        final. A failure before the first result is retried by replaying the audio sent so
        far (up to ``retry.replay_buffer_seconds``); a failure after results raises
        :class:`~asr.errors.StreamInterruptedError`, keeping what was yielded.

        Args:
            audio: Chunks of audio as ``options`` describe (PCM16 mono at 16 kHz by
                default); any chunk size, ideally 20-200 ms. An
                :class:`~asr.markers.EndOfUtterance` between chunks forces the server
                to finalise the utterance there, keeping the stream open.
            options: What to recognise; defaults to :class:`RecognitionOptions`.
            timeout: Deadline in seconds for the whole stream; defaults to the client's
                ``stream_timeout``.
            progress: Also yield a :class:`~asr.events.Progress` for every response
                that carries no transcript: a slow server that is still working can be
                told from a stalled one.

        Yields:
            :class:`~asr.events.Partial` and :class:`~asr.events.Final` events in order
            (and :class:`~asr.events.Progress` when asked).
        """
        options = options or RecognitionOptions()
        # The bound is in seconds of this stream's audio, whatever its rate and encoding.
        limit = int(self.retry.replay_buffer_seconds * options.max_bytes_per_second)
        source = ReplayableAudio(audio, limit)
        attempt_once = self._attempts(options, timeout)
        async for attempt in retrying(self.retry, on_retry=self._on_retry("StreamingRecognize")):
            with attempt, self._attempt_guard():
                if not source.replayable:
                    raise StreamInterruptedError(
                        "stream failed before its first result after more audio than can "
                        "be replayed; start a new stream"
                    )
                async for event in attempt_once(source):
                    if progress or not isinstance(event, Progress):
                        yield event
