"""The embedded server driven the way NVIDIA's own ASR scripts drive Riva.

The scripts (nvidia-riva/python-clients ``scripts/asr/transcribe_file.py``,
``transcribe_file_offline.py``, ``riva_streaming_asr_client.py``) are not on PyPI, so each
test parses the scripts' flags with their parser (``riva.client.argparse_utils`` of
nvidia-riva-client 2.27, which the scripts import, plus the scripts' own flags), builds the
request as the script's ``main`` does, and asserts on what the script would print
(``riva.client.print_streaming`` / ``print_offline``) and on the responses, as Riva answers
(``riva/proto/riva_asr.proto``). The scripts send no ``sample_rate_hertz``: the WAV header in
the first chunk carries it. With 2.27, ``--language-code`` defaults to "" (the server's
choice), not "en-US".
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import riva.client
import riva.client.proto.riva_asr_pb2 as rasr
import soundfile as sf

from asr.audio import read_audio, resample
from asr.embedded.text_forms import is_profane
from asr.wer import normalize, word_error_rate

from .conftest import SPEECH, ServerThread, load_set, scaled
from .riva_scripts import (
    recognition_config,
    refused,
    script_args,
    transcribe_file,
    transcribe_file_offline,
)
from .riva_support import JFK, JFK_WAV

ROBUST = "ask not what your country can do for you"
NUMBERS = SPEECH / "ljspeech32" / "LJ001-0024.wav"  # "... in the year fourteen sixty-two)"
SHORT = SPEECH / "librispeech_mini" / "1089-134691-0000.wav"  # 2.1 s: "he could wait no longer"
UNAVAILABLE = "Error: Unavailable model requested. Lang: {}, Type: {}"


@pytest.mark.parametrize("kind", ["online", "offline"])
def test_list_models(asr_service: riva.client.ASRService, kind: str) -> None:
    # --list-models of transcribe_file.py (online) and transcribe_file_offline.py (offline).
    response = asr_service.stub.GetRivaSpeechRecognitionConfig(
        rasr.RivaSpeechRecognitionConfigRequest()
    )
    asr_models: dict[str, list[dict[str, list[str]]]] = {}
    for model_config in response.model_config:
        if model_config.parameters["type"] == kind:
            language_code = model_config.parameters["language_code"]
            asr_models.setdefault(language_code, []).append({"model": [model_config.model_name]})
    assert list(asr_models) == ["en-US"] and asr_models["en-US"]


def test_default_run(asr_service: riva.client.ASRService) -> None:
    run = transcribe_file(asr_service, JFK_WAV)
    assert run.lines and all(line.startswith("## ") for line in run.lines), run.lines
    printed = "".join(line[3:] for line in run.lines)
    assert word_error_rate([JFK], [printed]) <= 0.15 and ROBUST in normalize(printed)
    assert all(r.alternatives[0].transcript.endswith(" ") for r in run.finals)
    assert all(r.channel_tag == 1 for r in run.results)
    ids = {response.id.value for response in run.responses}
    assert len(ids) == 1
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", ids.pop())
    processed = [r.audio_processed for r in run.results]
    assert processed == sorted(processed) and processed[-1] == pytest.approx(11.0, abs=0.05)


def test_request_id_echoed(asr_service: riva.client.ASRService) -> None:
    run = transcribe_file(asr_service, SHORT, request_id="conformance-42")
    assert run.responses and {r.id.value for r in run.responses} == {"conformance-42"}


@pytest.mark.parametrize("pace", [(), ("--simulate-realtime",)], ids=["unpaced", "realtime"])
def test_show_intermediate(asr_service: riva.client.ASRService, pace: tuple[str, ...]) -> None:
    run = transcribe_file(asr_service, JFK_WAV, "--show-intermediate", *pace)
    kinds = [line[:3] for line in run.lines]
    assert ">> " in kinds and kinds.index(">> ") < kinds.index("## "), run.lines
    assert run.interims and all(0 < r.stability <= 1 for r in run.interims)
    assert all(r.stability == 0.0 for r in run.finals)
    # Every final of over a second of speech (4 words or more) follows an interim of its own.
    interims_since_final = 0
    for r in run.results:
        if not r.is_final:
            interims_since_final += bool(r.alternatives)
            continue
        words = r.alternatives[0].transcript.split()
        assert interims_since_final or len(words) < 4, f"no interim before final {words}"
        interims_since_final = 0
    assert word_error_rate([JFK], [run.text]) <= 0.15


def test_print_confidence(asr_service: riva.client.ASRService) -> None:
    run = transcribe_file(asr_service, JFK_WAV, "--print-confidence")
    pairs = list(zip(run.lines, run.lines[1:], strict=False))
    stability = [float(b[10:]) for a, b in pairs if a[:3] == ">> " and b[:10] == "Stability:"]
    confidence = [float(b[11:]) for a, b in pairs if a[:3] == "## " and b[:11] == "Confidence:"]
    assert len(stability) == len(run.interims) >= 1, run.lines
    assert len(confidence) == len(run.finals) >= 1, run.lines
    assert all(0 < s <= 1 for s in stability) and all(0 < c <= 1 for c in confidence)


def test_word_time_offsets(asr_service: riva.client.ASRService) -> None:
    run = transcribe_file(asr_service, JFK_WAV, "--word-time-offsets")
    assert run.lines.count("Timestamps:") == len(run.finals) >= 1
    assert sum(bool(re.match(r"Time \d+\.\d\ds: Transcript 0: ", x)) for x in run.lines) == len(
        run.finals
    )
    table = [re.fullmatch(r"(\S+) +(\d+) +(\d+) +(\d\.\d{4}) *", line) for line in run.lines]
    rows = [(m[1], int(m[2]), int(m[3])) for m in table if m]
    assert [w for w, _, _ in rows] == [w.word for r in run.finals for w in r.alternatives[0].words]
    assert word_error_rate([JFK], [" ".join(w for w, _, _ in rows)]) <= 0.15
    starts = [start for _, start, _ in rows]
    assert starts == sorted(starts) and starts[0] >= 200, rows  # JFK speaks from ~0.3 s
    assert all(start <= end <= 11_000 for _, start, end in rows), rows


@pytest.mark.parametrize("punctuation", [False, True], ids=["plain", "punctuated"])
def test_automatic_punctuation(asr_service: riva.client.ASRService, punctuation: bool) -> None:
    flags = ("--automatic-punctuation",) if punctuation else ()
    text = transcribe_file(asr_service, JFK_WAV, *flags).text
    assert word_error_rate([JFK], [text]) <= 0.15
    if punctuation:
        assert re.search(r"[,.]", text) and text[0].isupper() and "Americans" in text, text
    else:
        assert text == text.lower() and not re.search(r"[^\w\s']", text), text


@pytest.mark.parametrize("verbatim", [True, False], ids=["verbatim", "no-verbatim"])
def test_verbatim_transcripts(asr_service: riva.client.ASRService, verbatim: bool) -> None:
    flags = () if verbatim else ("--no-verbatim-transcripts",)
    text = transcribe_file(asr_service, NUMBERS, *flags).text
    (reference,) = [c.text for c in load_set("ljspeech32") if c.path == NUMBERS]
    reference = re.sub(r"[()]", "", reference)  # Whisper's normaliser drops "(...)" whole
    assert word_error_rate([reference], [text]) <= 0.25, text
    if verbatim:  # the spoken form: numbers as words
        assert not re.search(r"\d", text) and "fourteen sixty two" in text, text
    else:  # the written form, and still no punctuation: none was asked for
        assert "1462" in text and not re.search(r"[,.;:!?](?!\d)", text), text


@pytest.fixture(scope="module")
def profane_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """espeak-ng saying two words of the server's list, at 16 kHz."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        pytest.skip("espeak-ng is not installed and no speech fixture holds a listed word")
    folder = tmp_path_factory.mktemp("profanity")
    said = "oh shit, this is fucking bad"
    raw = folder / "raw.wav"
    subprocess.run([espeak, "-w", str(raw), "-s", "140", said], check=True, timeout=scaled(30))
    samples, rate = sf.read(raw, dtype="float32")
    path = folder / "profane.wav"
    sf.write(path, resample(samples, rate, 16_000), 16_000, subtype="PCM_16")
    return path


@pytest.mark.parametrize("masked", [False, True], ids=["unfiltered", "filtered"])
def test_profanity_filter(
    asr_service: riva.client.ASRService, profane_wav: Path, masked: bool
) -> None:
    assert is_profane("shit") and is_profane("fucking")
    flags = ("--profanity-filter",) if masked else ()
    words = re.findall(r"[\w*']+", transcribe_file(asr_service, profane_wav, *flags).text)
    if masked:  # riva_asr.proto: "all but the initial character ... with asterisks"
        assert "s***" in words and not any(is_profane(w) for w in words), words
    else:
        assert "shit" in words and not any("*" in w for w in words), words


@pytest.mark.parametrize(
    "score", [None, "20", "-50"], ids=["default-score", "positive", "negative"]
)
def test_boosted_lm_words(asr_service: riva.client.ASRService, score: str | None) -> None:
    flags = ("--boosted-lm-words", "country", *(("--boosted-lm-score", score) if score else ()))
    text = normalize(transcribe_file(asr_service, JFK_WAV, *flags).text)
    if score is None or float(score) > 0:  # the scripts' default score is 4.0
        assert word_error_rate([JFK], [text]) <= 0.15 and ROBUST in text, text
    else:  # disfavoured: "country" is heard as something else, the rest stays
        assert "country" not in text.split(), text
        assert word_error_rate([JFK], [text]) <= 0.25 and "fellow americans" in text, text


def test_speaker_diarization_refused(asr_service: riva.client.ASRService) -> None:
    flag = "--speaker-diarization"
    refused(lambda: transcribe_file(asr_service, JFK_WAV, flag), "diarization is not available")
    offline = transcribe_file_offline(asr_service, JFK_WAV, flag)
    assert offline.error is not None and offline.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "diarization is not available" in offline.printed


def test_max_alternatives_offline(asr_service: riva.client.ASRService) -> None:
    offline = transcribe_file_offline(
        asr_service, JFK_WAV, "--max-alternatives", "3", "--word-time-offsets"
    )
    assert offline.error is None, offline.printed
    printed, final = offline.printed.split("Final transcript: ")
    assert word_error_rate([JFK], [final]) <= 0.15
    results = offline.response.results
    assert [len(r["alternatives"]) for r in json.loads(printed)["results"]] == [
        len(r.alternatives) for r in results
    ]
    assert all(1 <= len(r.alternatives) <= 3 for r in results)
    assert max(len(r.alternatives) for r in results) >= 2
    for r in results:
        transcripts = [a.transcript for a in r.alternatives]
        assert len(set(transcripts)) == len(transcripts), f"repeated alternatives {transcripts}"
        confidences = [a.confidence for a in r.alternatives]
        assert confidences == sorted(confidences, reverse=True), f"not best first {confidences}"
        assert r.alternatives[0].words and not any(a.words for a in r.alternatives[1:])


@pytest.mark.parametrize(
    ("flags", "refused_field"),
    [
        (("--start-history", "300"), None),
        (("--stop-history", "320"), None),  # pipecat's default
        (("--stop-history-eou", "200"), None),
        (
            ("--start-threshold", "0.6", "--stop-threshold", "0.8", "--stop-threshold-eou", "0.9"),
            None,
        ),
        (("--stop-history", "20000"), "stop_history"),
        (("--stop-threshold", "1.5"), "stop_threshold"),
    ],
    ids=["start-history", "stop-history-320", "eou", "thresholds", "history-20s", "threshold-1.5"],
)
def test_endpoint_flags(
    asr_service: riva.client.ASRService, flags: tuple[str, ...], refused_field: str | None
) -> None:
    if refused_field is not None:
        field = f"endpointing_config.{refused_field}"
        refused(lambda: transcribe_file(asr_service, JFK_WAV, *flags), field)
        return
    run = transcribe_file(asr_service, JFK_WAV, *flags)
    assert word_error_rate([JFK], [run.text]) <= 0.25, run.text
    if flags == ("--stop-history", "320"):  # a shorter stop window: more finals
        default = transcribe_file(asr_service, JFK_WAV)
        assert len(run.finals) > len(default.finals), (run.text, default.text)


def test_custom_configuration(asr_service: riva.client.ASRService) -> None:
    run = transcribe_file(asr_service, JFK_WAV, "--custom-configuration", "vad_probabilities:true")
    probabilities = [p for r in run.results for p in r.pipeline_states.vad_probabilities]
    assert probabilities and all(0 <= p <= 1 for p in probabilities)
    assert max(probabilities) > 0.5 and any(x.startswith("VAD States: ") for x in run.lines)
    assert word_error_rate([JFK], [run.text]) <= 0.15
    flags = ("--custom-configuration", "left_padding_size:2")
    refused(lambda: transcribe_file(asr_service, JFK_WAV, *flags), "'left_padding_size'")


@pytest.mark.parametrize("language", ["ru-RU", "en-GB"])
def test_language_code_refused(asr_service: riva.client.ASRService, language: str) -> None:
    flags = ("--language-code", language)
    streaming = UNAVAILABLE.format(language, "online")
    refused(lambda: transcribe_file(asr_service, JFK_WAV, *flags), streaming)
    offline = transcribe_file_offline(asr_service, JFK_WAV, *flags)
    assert offline.error is not None and offline.error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert UNAVAILABLE.format(language, "offline") in offline.printed


def test_model_name(asr_service: riva.client.ASRService) -> None:
    unknown = ("--model-name", "conformer-xx-asr-streaming")
    call = lambda: transcribe_file(asr_service, JFK_WAV, *unknown)  # noqa: E731
    refused(call, "Error: Unavailable model requested. Lang: ", ", Type: online")
    livekit = ("--model-name", "parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer")
    assert word_error_rate([JFK], [transcribe_file(asr_service, JFK_WAV, *livekit).text]) <= 0.15


def _streaming_client(
    uri: str, path: Path, out: Path, *flags: str
) -> tuple[list[str], dict[int, BaseException]]:
    """``riva_streaming_asr_client.py``: each thread's printed finals, and the failures."""
    args = script_args("--input-file", str(path), *flags)
    failures: queue.Queue[tuple[BaseException, int]] = queue.Queue()

    def worker(output_file: Path, thread_i: int) -> None:
        auth = riva.client.Auth(uri=uri)
        try:
            asr_service = riva.client.ASRService(auth)
            config = riva.client.StreamingRecognitionConfig(
                config=recognition_config(args, max_alternatives=args.max_alternatives),
                interim_results=True,
            )
            delay = riva.client.sleep_audio_length if args.simulate_realtime else None
            for _ in range(args.num_iterations):
                with riva.client.AudioChunkFileIterator(
                    args.input_file, args.file_streaming_chunk, delay_callback=delay
                ) as chunks:
                    riva.client.print_streaming(
                        responses=asr_service.streaming_response_generator(
                            audio_chunks=chunks, streaming_config=config
                        ),
                        output_file=output_file,
                        additional_info="time",
                        file_mode="a",
                        word_time_offsets=args.word_time_offsets,
                    )
        except BaseException as exc:  # the script queues it for its main thread
            failures.put((exc, thread_i))
        finally:
            auth.channel.close()

    paths = [out / f"output_{i:d}.txt" for i in range(args.num_clients)]
    threads = [threading.Thread(target=worker, args=(p, i)) for i, p in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(scaled(120))
    texts = [
        "".join(re.findall(r"^Time [\d.]+s: Transcript 0: (.*)$", p.read_text(), re.M))
        if p.exists()
        else ""
        for p in paths
    ]
    return texts, dict((i, exc) for exc, i in failures.queue)


def test_parallel_clients(riva_server: ServerThread, tmp_path: Path) -> None:
    flags = ("--num-clients", "4", "--num-iterations", "1")
    texts, failures = _streaming_client(riva_server.uri, JFK_WAV, tmp_path, *flags)
    assert not failures
    assert all(word_error_rate([JFK], [text]) <= 0.15 for text in texts), texts


def test_ninth_client_over_the_cap(riva_server: ServerThread, tmp_path: Path) -> None:
    # Paced as speech, the nine streams overlap; the server's default cap is 8.
    flags = ("--num-clients", "9", "--simulate-realtime")
    texts, failures = _streaming_client(riva_server.uri, SHORT, tmp_path, *flags)
    assert len(failures) == 1, failures
    ((ninth, error),) = failures.items()
    assert isinstance(error, grpc.RpcError)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
    assert "8 concurrent" in (error.details() or "")
    done = [text for i, text in enumerate(texts) if i != ninth]
    assert all(normalize(text) == "he could wait no longer" for text in done), texts


def test_runtime_config_force_eou(asr_service: riva.client.ASRService) -> None:
    with riva.client.AudioChunkFileIterator(str(JFK_WAV), 1600) as it:
        chunks = list(it)
    cut = 65  # 6.5 s, inside "what your country can do for you"
    config = riva.client.StreamingRecognitionConfig(
        config=recognition_config(script_args(), max_alternatives=1), interim_results=True
    )
    finals: list[tuple[int, str]] = []  # (chunks handed to gRPC by then, transcript)
    sent = 0
    forced = threading.Event()

    def requests() -> Iterator[Any]:
        nonlocal sent
        yield rasr.StreamingRecognizeRequest(streaming_config=config)
        for i, chunk in enumerate(chunks):
            force = {"force_eou": "true"} if i == cut - 1 else {}
            sent = i + 1
            yield rasr.StreamingRecognizeRequest(audio_content=chunk, runtime_config=force)
            if force:  # the rest once the forced final is in (or after 20 s: no final)
                forced.wait(scaled(20))

    for response in asr_service.stub.StreamingRecognize(requests(), timeout=scaled(60)):
        for r in response.results:
            if r.is_final:
                finals.append((sent, r.alternatives[0].transcript))
                if "country" in "".join(t for _, t in finals):  # past "ask not"
                    forced.set()
    before = normalize("".join(t for n, t in finals if n <= cut))
    assert "fellow americans" in before and "your country" in before, finals
    assert "ask what you" not in before, finals
    assert word_error_rate([JFK], ["".join(t for _, t in finals)]) <= 0.25, finals


@pytest.mark.parametrize(
    ("container", "subtype"), [("FLAC", "PCM_16"), ("OGG", "OPUS")], ids=["flac", "ogg-opus"]
)
def test_compressed_file(
    asr_service: riva.client.ASRService, tmp_path: Path, container: str, subtype: str
) -> None:
    # transcribe_file.py streams any file in 1600-byte chunks, encoding unset.
    samples, _ = read_audio(JFK_WAV)
    path = tmp_path / f"jfk.{container.lower()}"
    sf.write(path, samples, 16_000, format=container, subtype=subtype)
    run = transcribe_file(asr_service, path)
    assert word_error_rate([JFK], [run.text]) <= 0.15, run.text
