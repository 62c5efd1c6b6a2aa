"""Client audio frames to the 16 kHz PCM16 that Riva is sent.

Pure computation over bytes. Sample-format checks reuse :mod:`asr.audio`. Resampling is
streaming (one libsoxr state per utterance) rather than :func:`asr.audio.resample` per
frame: resampling each 20-100 ms frame on its own restarts the filter at every frame
edge, which puts a click into the audio every frame.
"""

from __future__ import annotations

from typing import Literal

from asr.audio import (
    TARGET_SAMPLE_RATE,
    StreamResampler,
    float32_bytes_to_array,
    float32_to_pcm16,
    pcm16_to_float32,
)

__all__ = ["AudioDecoder"]


class AudioDecoder:
    """Decodes one session's binary frames.

    Args:
        encoding: ``pcm16`` or ``float32``, little endian, mono.
        sample_rate: Rate of the client's audio in Hz.
    """

    def __init__(self, encoding: Literal["pcm16", "float32"], sample_rate: int) -> None:
        self.encoding = encoding
        self.sample_rate = sample_rate
        self._resampler = StreamResampler(self.sample_rate)

    def seconds(self, data: bytes) -> float:
        """Duration of a frame of ``data`` bytes."""
        width = 2 if self.encoding == "pcm16" else 4
        return len(data) / (width * self.sample_rate)

    def decode(self, data: bytes) -> bytes:
        """Decode one frame to 16 kHz PCM16 (possibly empty while the resampler fills).

        Raises:
            asr.errors.AudioFormatError: The frame is not whole samples of the encoding,
                or (float32) holds NaN or infinite values.
        """
        if self.encoding == "pcm16":
            if self.sample_rate == TARGET_SAMPLE_RATE and not len(data) % 2:
                return data  # already what Riva is sent: no round trip through float32
            samples = pcm16_to_float32(data)  # raises on an odd byte count
        else:
            samples = float32_bytes_to_array(data)
        if self.sample_rate != TARGET_SAMPLE_RATE:
            samples = self._resampler.process(samples)
        return float32_to_pcm16(samples)

    def flush(self) -> bytes:
        """The resampler's tail: call at the end of an utterance so no audio is held back."""
        return float32_to_pcm16(self._resampler.flush())
