"""Markers that may sit between the audio chunks given to :meth:`RivaASRClient.stream`.

::

    chunks = [first_half, EndOfUtterance(), second_half]
    async for event in client.stream(chunks):
        ...

A marker is sent in its place in the stream, after the chunks before it and before the
ones after it, and kept in place when a failed stream is replayed.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AudioItem", "EndOfUtterance"]


@dataclass(frozen=True, slots=True)
class EndOfUtterance:
    """Force an end of utterance here: the server finalises the utterance in progress
    after the audio sent so far, and the stream stays open for the next one.

    Sent as a ``StreamingRecognizeRequest`` with no audio and ``runtime_config``
    ``{"force_eou": "true"}`` (Riva 2.27, as ``riva.client.realtime`` sends it).
    """


AudioItem = bytes | EndOfUtterance
"""What a stream's audio iterable yields: encoded audio, or a marker."""
