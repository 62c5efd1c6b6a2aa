"""Audio input decoding, the streaming Silero VAD and the model checks, on real audio."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.audio import float32_to_pcm16, read_audio, resample
from asr.embedded.audio_input import (
    StreamAudioDecoder,
    alaw_to_float32,
    decode_audio_file,
    mulaw_to_float32,
)
from asr.embedded.model import (
    VAD_SHA256,
    WHISPER_SHA256,
    sha256_of,
    vad_model_path,
    verify_file,
    whisper_model_dir,
)
from asr.embedded.vad import FRAME_SAMPLES, SileroVAD
from asr.errors import AudioFormatError, ConfigurationError

from .conftest import SPEECH

JFK = SPEECH / "jfk" / "jfk.wav"


@pytest.fixture(scope="module")
def jfk() -> np.ndarray:
    samples, rate = read_audio(JFK)
    assert rate == 16_000
    return samples


def raw(samples: np.ndarray, rate: int, subtype: str) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, samples, rate, format="RAW", subtype=subtype)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("subtype", "decode"), [("ULAW", mulaw_to_float32), ("ALAW", alaw_to_float32)]
)
def test_g711_tables_match_libsndfile(subtype: str, decode: object) -> None:
    codes = bytes(range(256))
    expected, _ = sf.read(
        io.BytesIO(codes),
        format="RAW",
        subtype=subtype,
        samplerate=8000,
        channels=1,
        dtype="float32",
    )
    assert callable(decode)
    assert np.array_equal(decode(codes), expected)


def test_wav_header_split_over_chunks_is_sniffed_and_stripped(jfk: np.ndarray) -> None:
    data = JFK.read_bytes()
    decoder = StreamAudioDecoder(encoding=None, sample_rate=None, channels=None)
    parts = [decoder.feed(data[i : i + 7]) for i in range(0, 70, 7)]
    assert sum(p.size for p in parts[:5]) == 0  # nothing before the header is complete
    parts += [decoder.feed(data[70:]), decoder.finish()]
    # The rate was given by no one but the header.
    assert decoder.encoding == "LINEAR_PCM" and decoder.sample_rate == 16_000
    assert np.array_equal(np.concatenate(parts), jfk)


def test_header_overrides_config_like_the_official_client_sends(jfk: np.ndarray) -> None:
    data = JFK.read_bytes()
    decoder = StreamAudioDecoder(encoding="LINEAR_PCM", sample_rate=16_000, channels=1)
    out = np.concatenate([decoder.feed(data[:3200]), decoder.feed(data[3200:]), decoder.finish()])
    assert np.array_equal(out, jfk)  # the 44 header bytes did not become a click


def test_stereo_441k_pcm_is_mixed_and_resampled_in_a_stream(jfk: np.ndarray) -> None:
    mono = resample(jfk, 16_000, 44_100)
    stereo = np.stack([mono, mono], axis=1).reshape(-1)
    data = float32_to_pcm16(stereo)
    decoder = StreamAudioDecoder(encoding="LINEAR_PCM", sample_rate=44_100, channels=2)
    chunks = [decoder.feed(data[i : i + 4410 * 4 + 2]) for i in range(0, len(data), 4410 * 4 + 2)]
    out = np.concatenate([*chunks, decoder.finish()])
    assert abs(out.size - jfk.size) <= 2
    n = min(out.size, jfk.size)
    assert np.corrcoef(out[:n], jfk[:n])[0, 1] > 0.99


def test_mulaw_8k_stream(jfk: np.ndarray) -> None:
    data = raw(resample(jfk, 16_000, 8_000), 8_000, "ULAW")
    decoder = StreamAudioDecoder(encoding="MULAW", sample_rate=8_000, channels=1)
    out = np.concatenate([decoder.feed(data[:801]), decoder.feed(data[801:]), decoder.finish()])
    assert abs(out.size - jfk.size) <= 2


@pytest.mark.parametrize(
    ("kwargs", "data", "message"),
    [
        (
            {"encoding": "LINEAR_PCM", "sample_rate": 16_000, "channels": 1},
            b"\x00\x01\x02",
            "odd number of PCM16 bytes",
        ),
        (
            {"encoding": "LINEAR_PCM", "sample_rate": 16_000, "channels": 2},
            b"\x00" * 6,
            "2 bytes left over",
        ),
        (
            {"encoding": None, "sample_rate": None, "channels": None},
            b"\x00" * 100,
            "sample_rate_hertz is not set",
        ),
        (
            {"encoding": None, "sample_rate": None, "channels": None},
            b"RIFF\x00\x00\x00\x00WAVE",
            "truncated",
        ),
    ],
)
def test_undecodable_audio_raises(kwargs: dict[str, object], data: bytes, message: str) -> None:
    decoder = StreamAudioDecoder(**kwargs)  # type: ignore[arg-type]  # parametrized keywords
    with pytest.raises(AudioFormatError, match=message):
        decoder.feed(data)
        decoder.finish()


def test_whole_files_flac_wav_and_raw(jfk: np.ndarray) -> None:
    flac = io.BytesIO()
    sf.write(flac, jfk, 16_000, format="FLAC")
    from_flac = decode_audio_file(flac.getvalue(), encoding="FLAC", sample_rate=None, channels=None)
    assert np.abs(from_flac - jfk).max() < 1e-4
    assert np.array_equal(
        decode_audio_file(JFK.read_bytes(), encoding=None, sample_rate=None, channels=None), jfk
    )
    assert np.array_equal(
        decode_audio_file(
            float32_to_pcm16(jfk), encoding="LINEAR_PCM", sample_rate=16_000, channels=1
        ).size,
        jfk.size,
    )
    with pytest.raises(AudioFormatError, match="FLAC"):
        decode_audio_file(
            b"not a flac file at all", encoding="FLAC", sample_rate=None, channels=None
        )


def test_vad_streaming_equals_one_pass_whatever_the_chunking(jfk: np.ndarray) -> None:
    whole = SileroVAD().process(jfk)
    assert whole.size == jfk.size // FRAME_SAMPLES
    vad = SileroVAD()
    rng = np.random.default_rng(3)
    parts, pos = [], 0
    while pos < jfk.size:
        n = int(rng.integers(1, 4000))
        parts.append(vad.process(jfk[pos : pos + n]))
        pos += n
    assert np.allclose(np.concatenate(parts), whole, atol=1e-6)


def test_vad_tells_speech_from_silence_and_low_noise(jfk: np.ndarray) -> None:
    speech = SileroVAD().process(jfk)
    assert (speech > 0.5).mean() > 0.6  # JFK speaks most of the clip
    silence = SileroVAD().process(np.zeros(16_000 * 3, np.float32))
    noise = np.random.default_rng(7).standard_normal(16_000 * 3).astype(np.float32) * 0.003
    hiss = SileroVAD().process(noise)
    assert silence.max() < 0.2 and hiss.max() < 0.35


def test_models_are_the_pinned_files(tmp_path: Path) -> None:
    assert sha256_of(whisper_model_dir() / "model.bin") == WHISPER_SHA256
    assert sha256_of(vad_model_path()) == VAD_SHA256
    fake = tmp_path / "model.bin"
    fake.write_bytes(b"not whisper")
    with pytest.raises(ConfigurationError, match="SHA-256"):
        verify_file(fake, WHISPER_SHA256)
    with pytest.raises(ConfigurationError, match="missing"):
        verify_file(tmp_path / "absent.bin", WHISPER_SHA256)
