"""The audio of a stream, remembered until its first result so a failed call can be retried.

Markers (:class:`~asr.markers.EndOfUtterance`) are remembered with the audio, in their
place, so a replayed stream forces its ends of utterance where the original did.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable

from .audio import aiter_any
from .markers import AudioItem, EndOfUtterance

__all__ = ["ReplayableAudio"]


class ReplayableAudio:
    """Audio source that remembers what was sent until the first result arrives.

    A stream that fails before any result can be restarted by replaying the remembered
    items and then continuing with the source, so no audio is lost or sent twice. Once a
    result arrives, or the remembered audio exceeds ``limit`` bytes, the memory is dropped
    and the stream can no longer be replayed.
    """

    def __init__(self, source: AsyncIterable[AudioItem] | Iterable[AudioItem], limit: int) -> None:
        self._source = aiter_any(source)
        self._sent: list[AudioItem] | None = []
        self._sent_bytes = 0
        self._limit = limit
        self.error: BaseException | None = None

    @property
    def replayable(self) -> bool:
        return self._sent is not None

    def settle(self) -> None:
        """Forget the remembered audio: results arrived for it."""
        self._sent = None

    async def chunks(self) -> AsyncIterator[AudioItem]:
        for item in list(self._sent or ()):
            yield item
        async for item in self._source:
            if isinstance(item, EndOfUtterance):
                size = 0
            elif not item:
                continue
            else:
                size = len(item)
            if self._sent is not None:
                self._sent.append(item)
                self._sent_bytes += size
                if self._sent_bytes > self._limit:
                    self._sent = None
            yield item
