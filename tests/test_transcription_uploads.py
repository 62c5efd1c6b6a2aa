"""Uploads to ``POST /v1/audio/transcriptions`` (asr_server.transcriptions): the upload
checks and the chunker on real files made at test time from the JFK clip and LibriSpeech
clips, and the chunks' finals stitched back onto the upload's timeline.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf

from asr.events import Alternative, Final, Word
from asr.options import RecognitionOptions
from asr_server.transcriptions import (
    AudioTooLongError,
    Container,
    NotAudioError,
    PcmChunk,
    TranscriptionError,
    UnsupportedMediaTypeError,
    UploadLimits,
    UploadTooLargeError,
    pcm_chunks,
    probe,
    sniff,
    stitch,
    transcribe_chunks,
)

from .rest_support import ffmpeg_encoded
from .transcription_support import JfkClip, encoded, read_jfk, scripted_recognize


async def blocks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


@pytest.fixture(scope="module")
def jfk(speech_dir: Path) -> JfkClip:
    return read_jfk(speech_dir)


# --- upload checks -----------------------------------------------------------------------


def test_sniff_real_files(jfk: Any) -> None:
    samples, rate, wav = jfk
    assert sniff(wav[:64]) is Container.WAV
    assert sniff(encoded(samples, rate, "FLAC")[:64]) is Container.FLAC
    assert sniff(encoded(samples, rate, "OGG", "OPUS")[:64]) is Container.OGG
    assert sniff(encoded(samples, rate, "OGG", "VORBIS")[:64]) is Container.OGG
    assert sniff(encoded(samples, rate, "MP3")[:64]) is Container.MP3
    assert probe(wav[:64]).duration == 11.0
    assert probe(encoded(samples, rate, "FLAC")[:64]).duration == 11.0
    for container, codec in [("ipod", "aac"), ("webm", "libopus"), ("adts", "aac")]:
        with pytest.raises(UnsupportedMediaTypeError) as caught:
            sniff(ffmpeg_encoded(container, codec)[:64])
        assert caught.value.status == 415
    with pytest.raises(NotAudioError) as not_audio:
        sniff(b"Hello, this is a text file, not a recording.\n")
    assert not_audio.value.status == 400


async def decode_all(data: bytes, limits: UploadLimits | None = None) -> list[PcmChunk]:
    return [c async for c in pcm_chunks(blocks(data), limits)]


@pytest.mark.parametrize("kind", ["wav", "flac", "opus", "vorbis", "mp3", "wav24-44k-stereo"])
async def test_every_accepted_format_decodes_to_its_length(jfk: Any, kind: str) -> None:
    samples, rate, wav = jfk
    data = {
        "wav": wav,
        "flac": encoded(samples, rate, "FLAC"),
        "opus": encoded(samples, rate, "OGG", "OPUS"),
        "vorbis": encoded(samples, rate, "OGG", "VORBIS"),
        "mp3": encoded(samples, rate, "MP3"),
        "wav24-44k-stereo": encoded(
            np.stack(
                [np.interp(np.arange(485_100) / 44_100 * 16_000, np.arange(len(samples)), samples)]
                * 2,
                axis=1,
            ),
            44_100,
            "WAV",
            "PCM_24",
        ),
    }[kind]
    chunks = await decode_all(data)
    assert abs(sum(c.duration for c in chunks) - 11.0) < 0.06  # MP3 pads its last frame
    if kind == "wav":
        assert b"".join(c.pcm for c in chunks) == wav[44:]  # 16 kHz PCM16 passes untouched


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda wav: wav[: len(wav) // 2], NotAudioError, "truncated"),
        (lambda wav: wav[:30], NotAudioError, "truncated inside its header"),
        (lambda wav: b"", NotAudioError, "empty"),
        (lambda wav: b"just some text\n" * 100, NotAudioError, "not audio"),
        (lambda wav: wav[:44] + b"\x00" * 5, NotAudioError, "truncated"),
    ],
)
async def test_bad_uploads(
    jfk: Any, make: Any, error: type[TranscriptionError], message: str
) -> None:
    with pytest.raises(error, match=message) as caught:
        await decode_all(make(jfk[2]))
    assert caught.value.status == 400 and caught.value.param == "file"


async def test_size_and_duration_limits(jfk: Any) -> None:
    samples, rate, wav = jfk
    with pytest.raises(UploadTooLargeError) as large:
        await decode_all(wav, UploadLimits(max_bytes=100_000))
    assert large.value.status == 413
    for data in (wav, encoded(samples, rate, "FLAC"), encoded(samples, rate, "OGG", "OPUS")):
        with pytest.raises(AudioTooLongError, match="11.0 s long") as long:
            await decode_all(data, UploadLimits(max_seconds=5))
        assert long.value.status == 400
    # A WAV written while recording, its data size never filled in, is read to its end
    # and limited by the samples decoded.
    unsized = wav[:40] + b"\xff\xff\xff\xff" + wav[44:]
    assert sum(c.duration for c in await decode_all(unsized)) == 11.0
    with pytest.raises(AudioTooLongError):
        await decode_all(unsized, UploadLimits(max_seconds=5))


# --- chunking a long upload --------------------------------------------------------------


async def test_long_upload_cut_at_quiet_points_and_stitched(speech_dir: Path) -> None:
    clips = sorted((speech_dir / "librispeech_mini").glob("*.wav"))
    pcm = np.concatenate([sf.read(p, dtype="int16")[0] for p in clips])
    data = encoded(pcm, 16_000, "WAV", "PCM_16")
    limits = UploadLimits(chunk_seconds=15, cut_search_seconds=4)
    chunks = await decode_all(data, limits)
    total = len(pcm) / 16_000
    assert total > 60 and len(chunks) >= total // 15
    assert b"".join(c.pcm for c in chunks) == pcm.tobytes()  # nothing lost, nothing twice
    assert [c.start_sample for c in chunks] == list(
        np.cumsum([0] + [len(c.pcm) // 2 for c in chunks[:-1]])
    )
    assert all(c.duration <= 15 for c in chunks)
    assert all(c.duration >= 11 for c in chunks[:-1])  # cut in the last 4 s before the limit
    frames = pcm[: len(pcm) // 1600 * 1600].astype(np.float64).reshape(-1, 1600)
    loud = np.percentile(np.sqrt((frames**2).mean(axis=1)), 75)
    for chunk in chunks[1:]:
        around = pcm[chunk.start_sample - 800 : chunk.start_sample + 800].astype(np.float64)
        assert np.sqrt((around**2).mean()) < 0.1 * loud  # a pause, not a word

    transcript = await transcribe_chunks(
        blocks_of(chunks), scripted_recognize, RecognitionOptions()
    )
    assert transcript.duration == total
    assert len(transcript.finals) == len(chunks)
    for chunk, final in zip(chunks, transcript.finals, strict=True):
        assert final.words[0].start_ms == chunk.start_ms + 300
        assert final.audio_processed == pytest.approx(chunk.end_seconds - 0.5)
    starts = [w.start_ms for f in transcript.finals for w in f.words]
    assert starts == sorted(starts)


async def blocks_of(chunks: list[PcmChunk]) -> AsyncIterator[PcmChunk]:
    for chunk in chunks:
        yield chunk


def test_stitch_offsets_alternatives_too() -> None:
    chunk = PcmChunk(b"\x00\x00" * 16_000, start_sample=480_000)
    word = Word(word="hi", start_ms=100, end_ms=400)
    final = Final(
        text="hi",
        words=(word,),
        alternatives=(Alternative(text="hi", words=(word,)),),
        audio_processed=1.0,
    )
    [moved] = stitch([(chunk, [final])])
    assert (moved.words[0].start_ms, moved.words[0].end_ms) == (30_100, 30_400)
    assert moved.alternatives[0].words[0].start_ms == 30_100 and moved.audio_processed == 31.0
