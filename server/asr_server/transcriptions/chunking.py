"""A long upload cut into pieces one Riva ``Recognize`` call takes, and their finals
stitched back into one transcript.

:class:`PcmChunker` is sans-I/O: PCM16 of any blocking in, :class:`PcmChunk` of at most
``max_seconds`` out. Each cut is made at the quietest 100 ms in the last
``search_seconds`` before the limit (speech pauses every few seconds), so a word is
sent whole in one piece. Pieces do not overlap: an overlap would have each chunk's
recogniser hear the same words, and merging the two hypotheses by time costs or
duplicates words where they disagree. Only speech without a pause for
``search_seconds`` is cut inside a word.

:func:`stitch` puts each piece's finals on the upload's clock (times offset by the
piece's start), in order. :func:`transcribe_chunks` runs the pieces through a
``recognize`` callable one at a time, so one piece is in memory at once.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from asr.audio import TARGET_SAMPLE_RATE
from asr.events import Alternative, Final, Word
from asr.options import RecognitionOptions

from .decode import decode_pcm16
from .upload import UploadLimits

__all__ = [
    "PcmChunk",
    "PcmChunker",
    "Recognize",
    "Transcript",
    "pcm_chunks",
    "stitch",
    "transcribe_chunks",
]

_FRAME = TARGET_SAMPLE_RATE // 100  # 10 ms
_QUIET_FRAMES = 10  # the quietest 100 ms is looked for

Recognize = Callable[[bytes, RecognitionOptions], Awaitable[list[Final]]]
"""``RivaASRClient.recognize``'s shape: PCM16 and options in, the piece's finals out."""


@dataclass(frozen=True, slots=True)
class PcmChunk:
    """A piece of the upload: mono PCM16 and where in the upload it starts."""

    pcm: bytes
    start_sample: int
    sample_rate: int = TARGET_SAMPLE_RATE

    @property
    def start_ms(self) -> int:
        return round(self.start_sample * 1000 / self.sample_rate)

    @property
    def start_seconds(self) -> float:
        return self.start_sample / self.sample_rate

    @property
    def duration(self) -> float:
        """Seconds."""
        return len(self.pcm) / 2 / self.sample_rate

    @property
    def end_seconds(self) -> float:
        return self.start_seconds + self.duration


class PcmChunker:
    """Cuts a PCM16 stream into pieces of at most ``max_seconds``, at quiet points.

    Args:
        max_seconds: Longest piece.
        search_seconds: How far back from ``max_seconds`` a quiet point is looked for;
            0 cuts at exactly ``max_seconds``.
        sample_rate: The PCM's rate.
    """

    def __init__(
        self,
        *,
        max_seconds: float = 30.0,
        search_seconds: float = 5.0,
        sample_rate: int = TARGET_SAMPLE_RATE,
    ) -> None:
        self.sample_rate = sample_rate
        self._max = max(_FRAME, int(max_seconds * sample_rate) // _FRAME * _FRAME)
        self._search = min(self._max // 2, int(search_seconds * sample_rate) // _FRAME * _FRAME)
        self._buffer = bytearray()
        self._start = 0  # upload sample of _buffer[0]

    def _cut(self) -> int:
        """Samples to put in the next piece: up to the quietest 100 ms's middle."""
        if self._search < _FRAME * _QUIET_FRAMES:
            return self._max
        low = self._max - self._search
        window = np.frombuffer(self._buffer, "<i2", count=self._search, offset=low * 2)
        energy = (window.astype(np.float64) ** 2).reshape(-1, _FRAME).sum(axis=1)
        moving = np.convolve(energy, np.ones(_QUIET_FRAMES), mode="valid")
        quietest = int(np.argmin(moving)) + _QUIET_FRAMES // 2
        return low + quietest * _FRAME

    def _take(self, samples: int) -> PcmChunk:
        chunk = PcmChunk(bytes(self._buffer[: samples * 2]), self._start, self.sample_rate)
        del self._buffer[: samples * 2]
        self._start += samples
        return chunk

    def feed(self, pcm: bytes) -> list[PcmChunk]:
        """Take PCM16 (whole samples); return the pieces completed."""
        self._buffer += pcm
        chunks = []
        while len(self._buffer) // 2 > self._max:
            chunks.append(self._take(self._cut()))
        return chunks

    def finish(self) -> list[PcmChunk]:
        """The last piece (none if no audio is left)."""
        samples = len(self._buffer) // 2
        return [self._take(samples)] if samples else []


async def pcm_chunks(
    source: AsyncIterable[bytes], limits: UploadLimits | None = None
) -> AsyncIterator[PcmChunk]:
    """Decode an upload as it arrives and cut it into pieces for Riva.

    Args:
        source: The file's bytes (:func:`~.decode.iter_upload`).
        limits: Size, duration and piece limits; defaults to :class:`~.upload.UploadLimits`.

    Raises:
        TranscriptionError: As :func:`~.decode.decode_pcm16`; WAV and FLAC headers are
            checked before the first piece, other formats' lengths as they decode.
    """
    limits = limits or UploadLimits()
    chunker = PcmChunker(max_seconds=limits.chunk_seconds, search_seconds=limits.cut_search_seconds)
    async for pcm in decode_pcm16(source, limits):
        for chunk in chunker.feed(pcm):
            yield chunk
    for chunk in chunker.finish():
        yield chunk


def _shift(words: Sequence[Word], offset_ms: int) -> tuple[Word, ...]:
    return tuple(
        w.model_copy(update={"start_ms": w.start_ms + offset_ms, "end_ms": w.end_ms + offset_ms})
        for w in words
    )


def _offset(final: Final, chunk: PcmChunk) -> Final:
    offset = chunk.start_ms
    alternatives: tuple[Alternative, ...] = tuple(
        a.model_copy(update={"words": _shift(a.words, offset)}) for a in final.alternatives
    )
    return final.model_copy(
        update={
            "words": _shift(final.words, offset),
            "alternatives": alternatives,
            "audio_processed": final.audio_processed + chunk.start_seconds,
        }
    )


def stitch(pieces: Iterable[tuple[PcmChunk, Sequence[Final]]]) -> list[Final]:
    """One transcript from each piece's finals: in the pieces' order, times (word times,
    ``audio_processed``) moved from the piece's clock to the upload's."""
    return [_offset(final, chunk) for chunk, finals in pieces for final in finals]


@dataclass(frozen=True, slots=True)
class Transcript:
    """An upload's finals on its clock, and its length in seconds."""

    finals: tuple[Final, ...]
    duration: float


async def transcribe_chunks(
    chunks: AsyncIterable[PcmChunk], recognize: Recognize, options: RecognitionOptions
) -> Transcript:
    """Recognise each piece in turn and stitch the results.

    Args:
        chunks: The pieces (:func:`pcm_chunks`).
        recognize: ``client.recognize`` of a :class:`~asr.RivaASRClient`, or any callable
            of its shape.
        options: The Riva options (:func:`~.request.recognition_options`).

    Raises:
        TranscriptionError: From ``chunks`` (the upload).
        ASRError: From ``recognize`` (Riva), untouched.
    """
    pieces: list[tuple[PcmChunk, Sequence[Final]]] = []
    duration = 0.0
    async for chunk in chunks:
        pieces.append((chunk, await recognize(chunk.pcm, options)))
        duration = chunk.end_seconds
        # The piece's audio is not kept: only its finals.
        pieces[-1] = (PcmChunk(b"", chunk.start_sample, chunk.sample_rate), pieces[-1][1])
    return Transcript(tuple(stitch(pieces)), duration)
