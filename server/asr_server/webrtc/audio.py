"""Decoded WebRTC audio to the 16 kHz mono PCM16 the session protocol takes.

aiortc decodes the Opus track to :class:`av.AudioFrame` s (48 kHz, stereo, ``s16``, 20 ms
each); any other rate, layout or sample format is taken too. The channels are averaged and
the stream is resampled with one :class:`asr.audio.StreamResampler` per track, so frame
edges do not click (see :mod:`asr_server.decoding`). Pure computation, no I/O.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from asr.audio import TARGET_SAMPLE_RATE, Float32Array, StreamResampler, float32_to_pcm16
from asr.errors import AudioFormatError

__all__ = ["FrameConverter", "frame_to_mono"]

_SCALE = {"s16": 32768.0, "s32": 2147483648.0, "flt": 1.0, "dbl": 1.0, "u8": 128.0}


def frame_to_mono(frame: Any) -> Float32Array:
    """The samples of an :class:`av.AudioFrame` as mono float32 in [-1, 1].

    Raises:
        asr.errors.AudioFormatError: A sample format other than ``u8``, ``s16``,
            ``s32``, ``flt``, ``dbl`` (packed or planar).
    """
    name = frame.format.name.removesuffix("p")
    scale = _SCALE.get(name)
    if scale is None:
        raise AudioFormatError(f"unsupported audio sample format {frame.format.name!r}")
    data = np.asarray(frame.to_ndarray(), dtype=np.float32)
    if name == "u8":
        data = data - 128.0
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        mono = data.reshape(channels, -1).mean(axis=0)
    else:
        mono = data.reshape(-1, channels).mean(axis=1)
    return np.asarray(mono / scale, dtype=np.float32)


class FrameConverter:
    """One track's frames to 16 kHz mono PCM16, resampled as one stream."""

    def __init__(self) -> None:
        self._resampler: StreamResampler | None = None

    def convert(self, frame: Any) -> bytes:
        """The PCM16 of ``frame`` (possibly short or empty while the resampler fills).

        A change of sample rate mid-track starts a new resampler (its tail is kept).
        """
        rate = int(frame.sample_rate)
        head = b""
        if self._resampler is None or self._resampler.from_rate != rate:
            head = self.flush()
            self._resampler = StreamResampler(rate, TARGET_SAMPLE_RATE)
        return head + float32_to_pcm16(self._resampler.process(frame_to_mono(frame)))

    def flush(self) -> bytes:
        """The resampler's tail, held back for its filter."""
        if self._resampler is None:
            return b""
        return float32_to_pcm16(self._resampler.flush())
