"""Streamed compressed audio to 16 kHz mono float32, decoded as the bytes arrive.

Sans-I/O: :meth:`CompressedStream.feed` takes bytes of any chunking and returns the samples
of every frame or packet completed so far; :meth:`CompressedStream.finish` flushes. The
containers are cut by the subclasses (:class:`~asr.embedded.flac.FlacStream`,
:class:`~asr.embedded.ogg_opus.OggOpusStream`); the codecs are FFmpeg's (PyAV), fed one
packet at a time, so finals can come while the stream is still open.

Corrupt or truncated input raises :class:`~asr.errors.AudioFormatError`; samples returned
before stay returned.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Literal

import av
import numpy as np
import numpy.typing as npt

from ..audio import StreamResampler
from ..errors import AudioFormatError

__all__ = ["CompressedStream", "EMPTY", "Float32Array"]

Float32Array = npt.NDArray[np.float32]

EMPTY = np.zeros(0, np.float32)
_FULL_SCALE = {np.dtype(np.int16): 32768.0, np.dtype(np.int32): 2147483648.0}


class CompressedStream(ABC):
    """One stream's container cut into packets for an FFmpeg decoder, resampled to 16 kHz."""

    name = ""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._offset = 0  # stream offset of _buffer[0], for error messages
        self._codec: av.AudioCodecContext | None = None
        self._resampler: StreamResampler | None = None

    def feed(self, data: bytes) -> Float32Array:
        """Take the next bytes; returns the 16 kHz mono samples they complete (maybe none).

        Raises:
            AudioFormatError: The bytes are not valid for this container or codec.
        """
        self._buffer += data
        return self._resample(self._parse(final=False), last=False)

    def finish(self) -> Float32Array:
        """The stream ended: decode what is left and flush the decoder and resampler.

        Raises:
            AudioFormatError: The stream is truncated or corrupt.
        """
        parts = self._parse(final=True)
        if self._codec is not None:
            parts.append(self._decode(None))
        return self._resample(parts, last=True)

    @abstractmethod
    def _parse(self, *, final: bool) -> list[Float32Array]:
        """Cut and decode the packets complete in the buffer, at the codec's rate."""

    def _consume(self, count: int) -> bytes:
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        self._offset += count
        return data

    def _open(self, codec: Literal["flac", "opus"], extradata: bytes, rate: int) -> None:
        self._codec = av.CodecContext.create(codec, "r")
        self._codec.extradata = extradata
        self._resampler = StreamResampler(rate)

    def _decode(self, packet: bytes | None) -> Float32Array:
        assert self._codec is not None
        try:
            frames = self._codec.decode(None if packet is None else av.Packet(packet))
        except av.FFmpegError as exc:
            raise AudioFormatError(f"the {self.name} audio is corrupt: {exc}") from exc
        mono = []
        for frame in frames:
            # Planar formats are (channels, samples), packed ones (1, samples x channels).
            array = frame.to_ndarray()
            channels = len(frame.layout.channels)
            array = array if frame.format.is_planar else array.reshape(-1, channels).T
            scale = _FULL_SCALE.get(array.dtype, 1.0)  # FFmpeg shifts samples to full scale
            mono.append((array.mean(axis=0) / scale).astype(np.float32))
        return np.concatenate(mono) if mono else EMPTY

    def _resample(self, parts: list[Float32Array], *, last: bool) -> Float32Array:
        if self._resampler is None:
            return EMPTY
        samples = np.concatenate(parts) if parts else EMPTY
        return self._resampler.process(samples, last=last)
