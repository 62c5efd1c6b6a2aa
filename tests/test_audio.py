"""Audio helpers on real speech and on malformed input."""

from __future__ import annotations

import asyncio
import io
import wave

import numpy as np
import pytest

from asr import AudioFormatError, chunk_bytes, load_pcm16, paced, read_audio, resample
from asr.audio import (
    float32_bytes_to_array,
    float32_to_pcm16,
    parse_wav_header,
    pcm16_to_float32,
)

from .conftest import SPEECH


def wav_bytes(samples: np.ndarray, rate: int, channels: int = 1) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(float32_to_pcm16(samples))
    return buffer.getvalue()


def test_read_real_speech() -> None:
    samples, rate = read_audio(SPEECH / "jfk" / "jfk.wav")
    assert rate == 16_000
    assert samples.dtype == np.float32
    assert len(samples) == 176_000
    assert 0.01 < float(np.sqrt(np.mean(samples**2))) < 0.5


def test_pcm16_roundtrip_and_odd_length() -> None:
    samples = np.sin(np.linspace(0, 100, 1600)).astype(np.float32) * 0.5
    back = pcm16_to_float32(float32_to_pcm16(samples))
    assert np.max(np.abs(back - samples)) < 1e-4
    with pytest.raises(AudioFormatError, match="whole number"):
        pcm16_to_float32(b"\x00\x01\x02")


def test_stereo_is_mixed_down() -> None:
    left = np.full(100, 0.5, np.float32)
    right = np.zeros(100, np.float32)
    interleaved = np.stack([left, right], axis=1).reshape(-1)
    mono = pcm16_to_float32(float32_to_pcm16(interleaved), channels=2)
    assert mono.shape == (100,)
    assert np.allclose(mono, 0.25, atol=1e-4)


def test_float32_rejects_nan_and_inf() -> None:
    assert float32_bytes_to_array(np.array([0.5, -0.5], "<f4").tobytes()).tolist() == [0.5, -0.5]
    for bad in (np.nan, np.inf, -np.inf):
        with pytest.raises(AudioFormatError, match="NaN or infinite"):
            float32_bytes_to_array(np.array([0.0, bad], "<f4").tobytes())
    with pytest.raises(AudioFormatError):
        float32_bytes_to_array(b"\x00" * 7)


def test_resample_keeps_duration_and_pitch() -> None:
    rate = 48_000
    t = np.arange(rate) / rate
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    out = resample(tone, rate, 16_000)
    assert len(out) == 16_000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(np.argmax(spectrum)) - 440) <= 1


def test_load_pcm16_resamples_files(tmp_path: object) -> None:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav", 8_000)
    assert len(pcm) == 88_000 * 2


def test_wav_header_parsing() -> None:
    data = wav_bytes(np.zeros(800, np.float32), 44_100, channels=2)
    header = parse_wav_header(data)
    assert header is not None
    assert (header.sample_rate, header.channels, header.bits_per_sample) == (44_100, 2, 16)
    assert header.format_tag == 1
    assert header.data_offset == 44
    assert parse_wav_header(data[:20]) is None  # incomplete: wait for more bytes
    assert parse_wav_header(b"\x00" * 64) is None  # not a WAV file
    with pytest.raises(AudioFormatError):
        parse_wav_header(b"RIFF\x00\x00\x00\x00WAVEdata\x00\x00\x00\x00")


def test_chunking_covers_everything() -> None:
    data = bytes(range(256)) * 100
    chunks = list(chunk_bytes(data, chunk_ms=100, sample_rate=16_000))
    assert b"".join(chunks) == data
    assert {len(c) for c in chunks[:-1]} == {3_200}


def test_pacing_holds_real_time() -> None:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # 0.5 s of audio in 5 chunks, at 16 kHz PCM16.
        async for _ in paced([b"\x00" * 3_200] * 5, bytes_per_second=32_000):
            pass
        return loop.time() - start

    elapsed = asyncio.run(run())
    # The last chunk is due 0.4 s after the first.
    assert elapsed >= 0.39
