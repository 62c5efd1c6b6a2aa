"""What a speech-recognition backend offers its users: :class:`SpeechBackend`.

The gateway (``asr_server``) holds one backend for all its sessions and needs of it only
this: streaming recognition, whole-recording recognition, a health probe, and a lifetime.
:class:`~asr.client.RivaASRClient` (Riva over gRPC) and
:class:`~asr.dynamo.DynamoASRClient` (ASR workers on NVIDIA Dynamo) both satisfy it, with
the same events and the same exception tree (:mod:`asr.errors`)::

    backend: SpeechBackend = RivaASRClient() if riva else DynamoASRClient()
    async with backend:
        async for event in backend.stream(chunks, RecognitionOptions()):
            ...
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable
from types import TracebackType
from typing import Literal, Protocol, Self, overload

from .events import Final, Partial, Progress
from .markers import AudioItem
from .options import RecognitionOptions

__all__ = ["SpeechBackend"]


class SpeechBackend(Protocol):
    """A streaming speech recogniser, shared by many concurrent streams.

    ``async with`` it (or call :meth:`close`) to release its connections. Errors are those
    of :mod:`asr.errors`: a failure before a stream's first result may be retried by the
    backend itself; after results a stream raises
    :class:`~asr.errors.StreamInterruptedError`.
    """

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def close(self) -> None:
        """Release the backend's connections; streams still open fail."""

    async def health(self, *, timeout: float | None = None) -> bool:
        """Whether the backend can serve a new stream now; never raises for a failing one.

        Args:
            timeout: Seconds to wait for the answer; the backend's default when ``None``.
        """

    async def recognize(
        self,
        audio: bytes,
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Final]:
        """Recognise a whole recording: one :class:`~asr.events.Final` per utterance.

        Args:
            audio: Raw samples as ``options`` describe, or a whole WAV file.
            options: What to recognise; :class:`~asr.options.RecognitionOptions` when
                ``None``.
            timeout: Deadline in seconds; the backend's default when ``None``.
        """

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

    def stream(
        self,
        audio: AsyncIterable[AudioItem] | Iterable[AudioItem],
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
        progress: bool = False,
    ) -> AsyncIterator[Partial | Final | Progress]:
        """Recognise ``audio`` as it comes and yield results as they arrive.

        Args:
            audio: Chunks as ``options`` describe; an :class:`~asr.markers.EndOfUtterance`
                between chunks ends the utterance there, keeping the stream open.
            options: What to recognise; :class:`~asr.options.RecognitionOptions` when
                ``None``.
            timeout: Deadline in seconds for the whole stream; the backend's default
                when ``None``.
            progress: Also yield a :class:`~asr.events.Progress` for every response
                without a transcript.

        Yields:
            :class:`~asr.events.Partial` and :class:`~asr.events.Final` events in order
            (and :class:`~asr.events.Progress` when asked).
        """
        ...
