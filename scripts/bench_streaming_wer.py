"""Streaming against offline WER of the embedded server, set by set.

Usage: python scripts/bench_streaming_wer.py [--speech DIR] [--limit N] [--stop-history MS]
       [SET ...]

Starts the embedded server in process and recognises every clip of each set (default
``librispeech_mini`` and ``ljspeech32``) twice: offline (``Recognize``, the whole file) and
streaming (``StreamingRecognize``, 100 ms chunks as fast as they can be sent, with interim
results, as NVIDIA's ``transcribe_file.py`` sends them), both with punctuation on. Prints
the corpus WER of each (``asr.wer``, normalised) and the gap in points; the embedded
server aims at a gap within 1 point. ``--stop-history`` sets the request's
``endpointing_config.stop_history`` for both (pipecat sends 320);
``--no-previous-text`` turns off conditioning each utterance on the previous final
(``custom_configuration condition_on_previous_text:false``), to measure what it does.
"""

from __future__ import annotations

import argparse
import asyncio
import time

from asr import EndpointingConfig, Final, RecognitionOptions, RivaASRClient
from asr.audio import chunk_bytes, float32_to_pcm16
from asr.embedded import EmbeddedServer
from asr.evaluation.corpus import Clip, load_corpus, speech_fixtures
from asr.wer import word_error_rate


async def offline(client: RivaASRClient, pcm: bytes, options: RecognitionOptions) -> str:
    finals = await client.recognize(pcm, options)
    return " ".join(f.text for f in finals)


async def streaming(client: RivaASRClient, pcm: bytes, options: RecognitionOptions) -> str:
    texts = [
        event.text
        async for event in client.stream(chunk_bytes(pcm, 100), options)
        if isinstance(event, Final)
    ]
    return " ".join(texts)


async def main(args: argparse.Namespace) -> None:
    speech = speech_fixtures(args.speech)
    endpointing = EndpointingConfig(stop_history=args.stop_history) if args.stop_history else None
    custom = (("condition_on_previous_text", "false"),) if args.no_previous_text else ()
    options = RecognitionOptions(
        automatic_punctuation=True, endpointing=endpointing, custom_configuration=custom
    )
    async with (
        EmbeddedServer(port=0) as server,
        RivaASRClient(uri=f"127.0.0.1:{server.port}") as client,
    ):
        for name in args.sets:
            clips: list[Clip] = load_corpus(speech / name)[: args.limit]
            refs, off, stream = [], [], []
            began = time.monotonic()
            for clip in clips:
                pcm = float32_to_pcm16(clip.samples())
                refs.append(clip.text)
                off.append(await offline(client, pcm, options))
                stream.append(await streaming(client, pcm, options))
            w_off, w_stream = word_error_rate(refs, off), word_error_rate(refs, stream)
            print(
                f"{name}: {len(clips)} clips  offline {w_off:.2%}  streaming {w_stream:.2%}  "
                f"gap {100 * (w_stream - w_off):+.2f} points  ({time.monotonic() - began:.0f} s)"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", default=["librispeech_mini", "ljspeech32"])
    parser.add_argument("--speech", help="speech fixtures folder (default $ASR_SPEECH_FIXTURES)")
    parser.add_argument("--limit", type=int, help="only the first N clips of each set")
    parser.add_argument("--stop-history", type=int, help="endpointing stop_history, ms")
    parser.add_argument("--no-previous-text", action="store_true", help="no previous final")
    asyncio.run(main(parser.parse_args()))
