"""NVIDIA's ASR scripts (nvidia-riva/python-clients ``scripts/asr``) rebuilt around their
own flag parser, for the conformance tests.

The scripts are not on PyPI: each function here parses the scripts' flags with
``riva.client.argparse_utils`` (nvidia-riva-client 2.27, which the scripts import, plus the
scripts' own flags), builds the request as the script's ``main`` does, and returns what the
script would print (``riva.client.print_streaming`` / ``print_offline``) with the responses.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import riva.client
from riva.client.argparse_utils import add_asr_config_argparse_parameters
from riva.client.asr import streaming_request_generator

from .conftest import scaled
from .riva_support import finals_text, rpc_error

__all__ = [
    "Offline",
    "Run",
    "recognition_config",
    "refused",
    "script_args",
    "transcribe_file",
    "transcribe_file_offline",
]


def script_args(*flags: str) -> argparse.Namespace:
    """``flags`` parsed as the scripts parse them (the union of the three scripts' flags)."""
    parser = argparse.ArgumentParser(prog="scripts/asr")
    parser.add_argument("--input-file")
    parser.add_argument("--show-intermediate", action="store_true")
    parser.add_argument("--simulate-realtime", action="store_true")
    parser.add_argument("--print-confidence", action="store_true")
    parser.add_argument("--file-streaming-chunk", type=int, default=1600)
    parser.add_argument("--num-clients", type=int, default=1)
    parser.add_argument("--num-iterations", type=int, default=1)
    add_asr_config_argparse_parameters(
        parser, max_alternatives=True, profanity_filter=True, word_time_offsets=True
    )
    return parser.parse_args(list(flags))


def recognition_config(args: argparse.Namespace, *, max_alternatives: int) -> Any:
    """The scripts' ``RecognitionConfig``; transcribe_file.py asks for one alternative."""
    config = riva.client.RecognitionConfig(
        language_code=args.language_code,
        model=args.model_name,
        max_alternatives=max_alternatives,
        profanity_filter=args.profanity_filter,
        enable_automatic_punctuation=args.automatic_punctuation,
        verbatim_transcripts=not args.no_verbatim_transcripts,
        enable_word_time_offsets=args.word_time_offsets or args.speaker_diarization,
    )
    riva.client.add_word_boosting_to_config(config, args.boosted_lm_words, args.boosted_lm_score)
    riva.client.add_speaker_diarization_to_config(
        config, args.speaker_diarization, args.diarization_max_speakers
    )
    riva.client.add_endpoint_parameters_to_config(
        config,
        args.start_history,
        args.start_threshold,
        args.stop_history,
        args.stop_history_eou,
        args.stop_threshold,
        args.stop_threshold_eou,
    )
    riva.client.add_custom_configuration_to_config(config, args.custom_configuration)
    return config


@dataclass(frozen=True)
class Run:
    """What transcribe_file.py printed (its lines) and the responses it printed."""

    lines: list[str]
    responses: list[Any]
    results: list[Any]
    interims: list[Any]  # results with a transcript that are not final
    finals: list[Any]
    text: str  # the finals joined as Riva's clients join them


def _run(printed: str, responses: list[Any]) -> Run:
    results = [r for response in responses for r in response.results]
    return Run(
        # Into a text stream, print_streaming ends a partial line with "\r" (to overwrite it).
        lines=[line for line in re.split(r"[\r\n]", printed) if line.strip()],
        responses=responses,
        results=results,
        interims=[r for r in results if not r.is_final and r.alternatives],
        finals=[r for r in results if r.is_final],
        text=finals_text([(0.0, r) for r in results]),
    )


def _with_id(requests: Iterable[Any], request_id: str) -> Iterator[Any]:
    for request in requests:
        request.id.value = request_id
        yield request


def transcribe_file(
    service: riva.client.ASRService, path: Path, *flags: str, request_id: str | None = None
) -> Run:
    """``transcribe_file.py --input-file PATH FLAGS``; ``request_id`` (which the script
    never sets) on every request."""
    args = script_args("--input-file", str(path), *flags)
    config = riva.client.StreamingRecognitionConfig(
        config=recognition_config(args, max_alternatives=1), interim_results=True
    )
    delay = riva.client.sleep_audio_length if args.simulate_realtime else None
    word_times = args.word_time_offsets or args.speaker_diarization
    info = "time" if word_times else ("confidence" if args.print_confidence else "no")
    out, responses = io.StringIO(), []
    with riva.client.AudioChunkFileIterator(
        args.input_file, args.file_streaming_chunk, delay
    ) as chunks:
        if request_id is None:
            stream = service.streaming_response_generator(
                audio_chunks=chunks, streaming_config=config
            )
        else:
            requests = _with_id(streaming_request_generator(chunks, config), request_id)
            stream = service.stub.StreamingRecognize(requests, timeout=scaled(60))

        def recorded() -> Iterator[Any]:
            for response in stream:
                responses.append(response)
                yield response

        riva.client.print_streaming(
            responses=recorded(),
            output_file=out,
            show_intermediate=args.show_intermediate,
            additional_info=info,
            word_time_offsets=word_times,
            speaker_diarization=args.speaker_diarization,
        )
    return _run(out.getvalue(), responses)


@dataclass
class Offline:
    printed: str
    response: Any = None
    error: grpc.RpcError | None = None


def transcribe_file_offline(service: riva.client.ASRService, path: Path, *flags: str) -> Offline:
    """``transcribe_file_offline.py``: it prints the response, or a refusal's details."""
    args = script_args("--input-file", str(path), *flags)
    config = recognition_config(args, max_alternatives=args.max_alternatives)
    result = Offline("")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            result.response = service.offline_recognize(Path(args.input_file).read_bytes(), config)
            riva.client.print_offline(
                response=result.response, speaker_diarization=args.speaker_diarization
            )
        except grpc.RpcError as exc:
            result.error = exc
            print(exc.details())
    result.printed = out.getvalue()
    return result


def refused(call: Any, *details: str) -> None:
    """``call`` fails with INVALID_ARGUMENT whose details contain each of ``details``."""
    error = rpc_error(call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
    for part in details:
        assert part in (error.details() or ""), error.details()
