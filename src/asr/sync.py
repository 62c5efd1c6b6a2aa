"""A blocking wrapper around :class:`~asr.client.RivaASRClient` for scripts and notebooks.

It runs the asyncio client on an event loop in one background thread; calls block the
calling thread until the loop has the answer.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Coroutine, Iterable, Iterator
from types import TracebackType
from typing import Any, Self, TypeVar

from .client import ModelInfo, RivaASRClient
from .events import Final, Partial
from .markers import AudioItem
from .options import RecognitionOptions
from .settings import RivaSettings

__all__ = ["SyncRivaASRClient"]

T = TypeVar("T")
_DONE = object()


class SyncRivaASRClient:
    """Blocking Riva ASR client for ``uri``, or as ``settings`` describe (see
    :class:`~asr.client.RivaASRClient`; other fields through ``settings``)."""

    def __init__(self, uri: str | None = None, *, settings: RivaSettings | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="asr-sync-client", daemon=True
        )
        self._thread.start()
        self._client = RivaASRClient(uri, settings=settings)

    @property
    def client(self) -> RivaASRClient:
        """The asyncio client underneath."""
        return self._client

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel and stop the background loop."""
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    def recognize(
        self,
        audio: bytes,
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> list[Final]:
        """See :meth:`RivaASRClient.recognize`."""
        return self._run(self._client.recognize(audio, options, timeout=timeout))

    def list_models(self, model_name: str = "") -> list[ModelInfo]:
        """See :meth:`RivaASRClient.list_models`."""
        return self._run(self._client.list_models(model_name))

    def health(self) -> bool:
        """See :meth:`RivaASRClient.health`."""
        return self._run(self._client.health())

    def stream(
        self,
        audio: Iterable[AudioItem],
        options: RecognitionOptions | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[Partial | Final]:
        """See :meth:`RivaASRClient.stream`; ``audio`` may block (a microphone, pacing).

        Leaving the loop early cancels the stream.
        """
        events: queue.Queue[Any] = queue.Queue()

        async def pump() -> None:
            try:
                async for event in self._client.stream(_threaded(audio), options, timeout=timeout):
                    events.put(event)
            except BaseException as exc:
                events.put(exc)
                raise
            finally:
                events.put(_DONE)

        future = asyncio.run_coroutine_threadsafe(pump(), self._loop)
        try:
            while (item := events.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            future.cancel()


async def _threaded(audio: Iterable[AudioItem]) -> AsyncIterator[AudioItem]:
    """Iterate a blocking iterable without blocking the event loop."""
    iterator = iter(audio)
    while (chunk := await asyncio.to_thread(next, iterator, None)) is not None:
        yield chunk
