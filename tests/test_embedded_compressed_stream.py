"""Streamed FLAC and Ogg Opus: decoded incrementally, byte-chunked any way, and over the
embedded server with the official nvidia-riva-client.

The compressed files are made from the JFK fixture at test time with libsndfile
(``soundfile``), so no audio is committed.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import riva.client
import riva.client.proto.riva_audio_pb2 as raudio
import soundfile as sf

from asr.audio import read_audio, resample
from asr.embedded.audio_input import StreamAudioDecoder
from asr.embedded.flac import FlacStream
from asr.embedded.ogg_opus import OggOpusStream
from asr.errors import AudioFormatError
from asr.wer import normalize, word_error_rate

from .conftest import scaled
from .riva_support import JFK, JFK_WAV, finals_text, streaming_config

Samples = npt.NDArray[np.float32]


def encode(samples: Samples, rate: int, fmt: str, subtype: str | None = None) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, format=fmt, subtype=subtype)
    return out.getvalue()


@pytest.fixture(scope="module")
def jfk() -> Samples:
    samples, rate = read_audio(JFK_WAV)
    assert rate == 16_000
    return samples


@pytest.fixture(scope="module")
def flac(jfk: Samples) -> bytes:
    return encode(jfk, 16_000, "FLAC")


@pytest.fixture(scope="module")
def opus(jfk: Samples) -> bytes:
    return encode(jfk, 16_000, "OGG", "OPUS")


def decode_chunked(data: bytes, size: int, encoding: str | None = None) -> tuple[Samples, Samples]:
    """The samples ``feed`` returned, and those only ``finish`` gave."""
    decoder = StreamAudioDecoder(encoding=encoding, sample_rate=None, channels=None)
    fed = [decoder.feed(data[i : i + size]) for i in range(0, len(data), size)]
    return np.concatenate(fed), decoder.finish()


@pytest.mark.parametrize(("size", "encoding"), [(1, None), (1600, "FLAC"), (4096, None)])
def test_flac_decodes_exactly_as_it_arrives(
    jfk: Samples, flac: bytes, size: int, encoding: str | None
) -> None:
    fed, tail = decode_chunked(flac, size, encoding)
    # Lossless and already 16 kHz: the WAV's samples, bit for bit.
    assert np.array_equal(np.concatenate([fed, tail]), jfk)
    # Each frame comes out once the next one starts: only the last waits for finish().
    assert tail.size <= 4096 and fed.size >= jfk.size - 4096


def opus_matches(decoded: Samples, reference: Samples) -> None:
    """Bounds any correct Opus decoder meets: length, waveform correlation and energy."""
    # The pre-skip and the end trimming of RFC 7845 give back the original length.
    assert abs(decoded.size - reference.size) <= 16, (decoded.size, reference.size)
    n = min(decoded.size, reference.size)
    assert np.corrcoef(decoded[:n], reference[:n])[0, 1] > 0.95
    energy = float(np.sum(decoded[:n] ** 2) / np.sum(reference[:n] ** 2))
    assert 0.8 < energy < 1.25, energy


@pytest.mark.parametrize(("size", "encoding"), [(1, None), (1600, "OGGOPUS"), (4096, None)])
def test_ogg_opus_decodes_as_it_arrives(
    jfk: Samples, opus: bytes, size: int, encoding: str | None
) -> None:
    fed, tail = decode_chunked(opus, size, encoding)
    opus_matches(np.concatenate([fed, tail]), jfk)
    # Packets are decoded as soon as their bytes are in, not a page (about 1 s) later:
    # finish() gives only the resampler's tail.
    assert fed.size >= jfk.size - 16_000 // 10, fed.size


def test_stereo_44k_24_bit_flac_and_stereo_48k_opus(jfk: Samples) -> None:
    rate = 44_100
    wide = resample(jfk, 16_000, rate)
    stereo = np.stack([wide, 0.5 * wide], axis=1)
    data = encode(stereo, rate, "FLAC", "PCM_24")
    decoded = np.concatenate(decode_chunked(data, 3000))
    # Channels averaged, then the same libsoxr resampling as a whole-file decode.
    stored, _ = sf.read(io.BytesIO(data), dtype="float32")
    expected = resample(stored.mean(axis=1).astype(np.float32), rate)
    assert decoded.size == expected.size
    assert np.abs(decoded - expected).max() < 1e-5

    at48 = resample(jfk, 16_000, 48_000)
    data = encode(np.stack([at48, at48], axis=1), 48_000, "OGG", "OPUS")
    opus_matches(np.concatenate(decode_chunked(data, 4096)), jfk)


def test_empty_streams_give_no_audio() -> None:
    for stream in (FlacStream(), OggOpusStream()):
        assert stream.feed(b"").size == 0 and stream.finish().size == 0


def feed_until_error(data: bytes, encoding: str | None, match: str) -> Samples:
    """Feed ``data`` in 1600-byte chunks until the AudioFormatError; what came out before."""
    decoder = StreamAudioDecoder(encoding=encoding, sample_rate=None, channels=None)
    out = []
    with pytest.raises(AudioFormatError, match=match):
        for i in range(0, len(data), 1600):
            out.append(decoder.feed(data[i : i + 1600]))
        decoder.finish()
    return np.concatenate(out) if out else np.zeros(0, np.float32)


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x55]) + data[at + 1 :]


def test_truncated_and_corrupt_flac(jfk: Samples, flac: bytes) -> None:
    before = feed_until_error(flac[:-100], None, "FLAC audio is truncated or corrupt")
    assert np.array_equal(before, jfk[: before.size]) and before.size > jfk.size // 2
    # A flipped byte fails the frame's CRC-16 when the next frame starts; the frames
    # before it were returned, exactly.
    before = feed_until_error(flip(flac, len(flac) // 2), "FLAC", "fails its CRC-16")
    assert 0 < before.size < jfk.size and np.array_equal(before, jfk[: before.size])
    feed_until_error(flac[:30], None, "ends inside its metadata")
    feed_until_error(b"RIFF" + bytes(40), "FLAC", "must start with the 'fLaC' marker")
    feed_until_error(b"fLaC" + bytes(100), None, "STREAMINFO")


def test_truncated_and_corrupt_ogg_opus(jfk: Samples, opus: bytes) -> None:
    before = feed_until_error(opus[:-100], None, "Ogg audio is truncated")
    assert before.size > jfk.size // 2
    feed_until_error(flip(opus, len(opus) // 2), "OGGOPUS", "fails its CRC")
    # Cut a whole page out: the sequence number gives it away.
    second_page = opus.index(b"OggS", 4)
    third_page = opus.index(b"OggS", second_page + 4)
    fourth_page = opus.index(b"OggS", third_page + 4)
    cut = opus[:third_page] + opus[fourth_page:]
    feed_until_error(cut, None, "is missing")
    vorbis = encode(jfk[:16_000], 16_000, "OGG", "VORBIS")
    feed_until_error(vorbis, None, "Vorbis: only Opus is supported")
    feed_until_error(b"RIFF" + bytes(40), "OGGOPUS", "no page starts at byte 0")


# --- end to end: the official client and the embedded server --------------------------


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory, flac: bytes, opus: bytes) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("compressed")
    paths = {"flac": folder / "jfk.flac", "opus": folder / "jfk.opus"}
    paths["flac"].write_bytes(flac)
    paths["opus"].write_bytes(opus)
    return paths


def held_back(path: Path, final_seen: threading.Event, waited: list[bool]) -> Iterator[bytes]:
    """``AudioChunkFileIterator``'s 1600-byte chunks, held after three quarters of the file
    (past JFK's first pause) until a final has arrived; ``waited`` gets whether one did.

    A server that decoded only at the end of the stream would never send that final.
    """
    hold_at = path.stat().st_size * 3 // 4
    sent = 0
    with riva.client.AudioChunkFileIterator(str(path), 1600) as chunks:
        for chunk in chunks:
            if sent >= hold_at and not waited:
                waited.append(final_seen.wait(scaled(30)))
            yield chunk
            sent += len(chunk)


@pytest.mark.parametrize(
    ("kind", "encoding"),
    [
        pytest.param("flac", None, id="flac-sniffed"),
        pytest.param("opus", None, id="ogg-opus-sniffed"),
        pytest.param("flac", raudio.FLAC, id="flac-encoding-FLAC"),
        pytest.param("opus", raudio.OGGOPUS, id="ogg-opus-encoding-OGGOPUS"),
    ],
)
def test_streamed_jfk_over_the_embedded_server(
    asr_service: riva.client.ASRService,
    files: dict[str, Path],
    kind: str,
    encoding: int | None,
) -> None:
    # No sample rate or channel count: the containers carry them, as Riva sniffs them.
    extra = {} if encoding is None else {"encoding": encoding}
    config = streaming_config(None, **extra)
    final_seen = threading.Event()
    waited: list[bool] = []
    results = []
    chunks = held_back(files[kind], final_seen, waited)
    for response in asr_service.streaming_response_generator(chunks, config):
        results += [(0.0, r) for r in response.results]
        if any(r.is_final for r in response.results):
            final_seen.set()
    text = finals_text(results)
    assert word_error_rate([JFK], [text]) <= 0.25, text
    assert "ask not what your country can do for you" in normalize(text)
    # Incremental end to end: a final came while a quarter of the file was still unsent.
    assert waited == [True]
