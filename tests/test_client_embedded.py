"""The client against the real embedded Riva-compatible server, on real speech."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pytest

from asr import (
    EndOfUtterance,
    Final,
    InvalidArgumentError,
    Partial,
    RecognitionOptions,
    RivaASRClient,
    SyncRivaASRClient,
    chunk_bytes,
    load_pcm16,
    paced,
)
from asr.audio import float32_to_pcm16, read_audio
from asr.wer import normalize, word_error_rate

from .conftest import SPEECH, ServerThread, load_set

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)


async def stream_text(
    client: RivaASRClient, pcm: bytes, options: RecognitionOptions | None = None
) -> str:
    events = [e async for e in client.stream(chunk_bytes(pcm, 100), options)]
    return " ".join(e.text for e in events if isinstance(e, Final))


@pytest.mark.slow
@pytest.mark.parametrize("name", ["librispeech_mini", "ljspeech32"])
async def test_streaming_wer_within_two_points_of_offline(
    riva_server: ServerThread, name: str
) -> None:
    clips = load_set(name)
    refs, streamed, offline = [], [], []
    async with RivaASRClient(uri=riva_server.uri) as client:
        for clip in clips:
            pcm = load_pcm16(clip.path)
            refs.append(clip.text)
            streamed.append(await stream_text(client, pcm))
            offline.append(" ".join(f.text for f in await client.recognize(pcm, timeout=60)))
    wer_stream = word_error_rate(refs, streamed)
    wer_offline = word_error_rate(refs, offline)
    print(f"{name}: streaming WER {wer_stream:.3%}, offline WER {wer_offline:.3%}")
    assert wer_stream <= wer_offline + 0.02
    # Whisper tiny.en on these sets measures 3.5 % and 7.5 % whole-clip (shared README).
    assert wer_offline < 0.12


async def test_partials_arrive_before_the_final(riva_server: ServerThread) -> None:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    events: list[tuple[float, Partial | Final]] = []
    async with RivaASRClient(uri=riva_server.uri) as client:
        start = time.monotonic()
        async for event in client.stream(paced(chunk_bytes(pcm, 100), 32_000)):
            events.append((time.monotonic() - start, event))
    kinds = [e.type for _, e in events]
    assert kinds.count("partial") >= 3, kinds
    assert kinds[0] == "partial"
    finals = [e for _, e in events if isinstance(e, Final)]
    assert word_error_rate([JFK], [" ".join(f.text for f in finals)]) <= 0.1
    # The first partial comes while the clip is still being spoken (11 s long).
    assert events[0][0] < 6.0
    # Partials grow along the speech: the last one before the first final has more words.
    partials = [e.text for _, e in events if isinstance(e, Partial)]
    assert len(partials[-1].split()) > len(partials[0].split())


async def test_silence_gives_no_text(riva_server: ServerThread) -> None:
    rng = np.random.default_rng(7)
    quiet = (rng.standard_normal(16_000 * 4) * 0.001).astype(np.float32)  # -60 dBFS hiss
    pcm = bytes(16_000 * 2 * 3) + float32_to_pcm16(quiet)
    async with RivaASRClient(uri=riva_server.uri) as client:
        events = [e async for e in client.stream(chunk_bytes(pcm, 100))]
    assert [e.text for e in events if e.text.strip()] == []


async def test_several_utterances_give_several_finals(riva_server: ServerThread) -> None:
    clips = load_set("librivox_ps5")[:3]
    gap = np.zeros(16_000 * 2, np.float32)
    parts: list[np.ndarray] = []
    for clip in clips:
        samples, _ = read_audio(clip.path)
        parts += [samples, gap]
    pcm = float32_to_pcm16(np.concatenate(parts))
    options = RecognitionOptions(word_time_offsets=True)
    async with RivaASRClient(uri=riva_server.uri) as client:
        events = [e async for e in client.stream(chunk_bytes(pcm, 100), options)]
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) >= len(clips)
    hypothesis = " ".join(f.text for f in finals)
    assert word_error_rate([" ".join(c.text for c in clips)], [hypothesis]) < 0.15
    # Word times are relative to the stream, so later utterances start later.
    starts = [f.start_ms for f in finals if f.start_ms is not None]
    assert starts == sorted(starts) and len(starts) == len(finals)
    assert finals[-1].start_ms is not None and finals[-1].start_ms > 10_000


async def test_word_time_offsets(riva_server: ServerThread) -> None:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    options = RecognitionOptions(word_time_offsets=True, automatic_punctuation=True)
    async with RivaASRClient(uri=riva_server.uri) as client:
        finals = [
            e async for e in client.stream(chunk_bytes(pcm, 100), options) if isinstance(e, Final)
        ]
    words = [w for f in finals for w in f.words]
    assert normalize(" ".join(w.word for w in words)) == normalize(JFK)
    assert all(0 <= w.start_ms <= w.end_ms <= 11_100 for w in words)
    assert [w.start_ms for w in words] == sorted(w.start_ms for w in words)
    assert all(w.confidence is not None and 0 < w.confidence <= 1 for w in words)
    assert any(ch in " ".join(f.text for f in finals) for ch in ",.")  # punctuated


async def test_resampled_input_is_recognised(riva_server: ServerThread) -> None:
    # Telephone-band audio: Whisper hears less of it, and its words at fragile boundaries
    # differ between CPUs ("my fellow americans" comes back as "am i fellow america" with
    # AVX2 kernels, 4 errors in 22 words). The bound is for a correct decode of any of them;
    # the closing phrase is robust, and without resampling nothing would be recognised.
    pcm8k = load_pcm16(SPEECH / "jfk" / "jfk.wav", 8_000)
    async with RivaASRClient(uri=riva_server.uri) as client:
        text = await stream_text(client, pcm8k, RecognitionOptions(sample_rate_hz=8_000))
    assert word_error_rate([JFK], [text]) <= 0.25, text
    assert "ask what you can do for your country" in normalize(text)


async def test_bad_audio_is_a_typed_error(riva_server: ServerThread) -> None:
    async with RivaASRClient(uri=riva_server.uri) as client:
        with pytest.raises(InvalidArgumentError):
            async for _ in client.stream([b"\x00\x01\x02"]):
                pass
        with pytest.raises(InvalidArgumentError):
            await client.recognize(b"\x00\x00" * 1000, RecognitionOptions(language_code="de-DE"))


async def test_models_and_health(riva_server: ServerThread) -> None:
    async with RivaASRClient(uri=riva_server.uri) as client:
        assert await client.health()
        models = await client.list_models()
    assert models
    assert any(m.streaming for m in models)
    assert all(m.language_code and m.language_code.startswith("en") for m in models)


def test_sync_client_against_embedded(riva_server: ServerThread) -> None:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    with SyncRivaASRClient(uri=riva_server.uri) as client:
        finals = [e for e in client.stream(chunk_bytes(pcm, 200)) if isinstance(e, Final)]
        assert word_error_rate([JFK], [" ".join(f.text for f in finals)]) <= 0.1
        assert client.list_models()


async def test_concurrent_streams_share_one_client(riva_server: ServerThread) -> None:
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    async with RivaASRClient(uri=riva_server.uri) as client:
        texts = await asyncio.gather(*(stream_text(client, pcm) for _ in range(3)))
    for text in texts:
        assert word_error_rate([JFK], [text]) <= 0.1


async def test_end_of_utterance_marker_in_a_pause_splits_jfk_in_two(
    riva_server: ServerThread,
) -> None:
    """A forced end in the pause after "ask not" (4.5-5.1 s): a final for each side, every
    word in one of them, and the stream goes on after the marker."""
    pcm = load_pcm16(SPEECH / "jfk" / "jfk.wav")
    cut = int(4.8 * 16_000) * 2
    items: list[bytes | EndOfUtterance] = [
        *chunk_bytes(pcm[:cut], 100),
        EndOfUtterance(),
        *chunk_bytes(pcm[cut:], 100),
    ]
    async with RivaASRClient(uri=riva_server.uri) as client:
        events = [e async for e in client.stream(items, RecognitionOptions(word_time_offsets=True))]
    finals = [e for e in events if isinstance(e, Final)]
    assert len(finals) == 2, [f.text for f in finals]
    first, second = finals
    assert first.audio_processed == pytest.approx(4.8, abs=0.01)  # reported at the cut
    assert first.words[-1].end_ms <= 4800 <= second.words[0].start_ms
    assert normalize(f"{first.text} {second.text}") == JFK
