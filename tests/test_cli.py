"""The ``asr`` command as a person runs it: subprocesses, their output and exit status.

Every error a newcomer is likely to meet ends in one line on stderr that says what is wrong
and what to try, never a traceback or a line from gRPC's C core.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.wer import word_error_rate

from .conftest import REPO, SPEECH, ServerThread, load_set, scaled

WAV, JFK = load_set("jfk")[0].path, load_set("jfk")[0].text
GOLDEN = REPO / "tests" / "golden"


def asr(*args: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m asr ARGS`` with no Riva endpoint in the environment (unless given)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("RIVA_")}
    return subprocess.run(
        [sys.executable, "-m", "asr", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=scaled(180),
        env=base | (env or {}),
        cwd=REPO,
    )


def one_line(stderr: str) -> str:
    """The only line of ``stderr``; fails on tracebacks, log lines or gRPC core output."""
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


def test_transcribe_and_models_against_a_server(riva_server: ServerThread) -> None:
    done = asr("transcribe", WAV, "--server", riva_server.uri)
    assert done.returncode == 0, done.stderr
    assert word_error_rate([JFK], [done.stdout]) <= 0.1
    assert done.stderr == ""

    lines = asr(
        "transcribe", WAV, "--server", riva_server.uri, "--json", "--word-time-offsets"
    ).stdout.splitlines()
    assert '"type":"final"' in lines[-1]
    assert '"start_ms"' in lines[-1]

    models = asr("models", "--server", riva_server.uri)
    assert models.returncode == 0
    assert "language_code=en" in models.stdout


def test_transcribe_without_a_server_uses_the_embedded_engine() -> None:
    done = asr("transcribe", WAV, "--automatic-punctuation")
    assert done.returncode == 0, done.stderr
    assert "embedded engine" in one_line(done.stderr)
    assert word_error_rate([JFK], [done.stdout]) <= 0.1
    assert "," in done.stdout or "." in done.stdout  # punctuation was asked for


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    missing = asr("transcribe", tmp_path / "nosuch.wav")
    assert missing.returncode == 2
    assert one_line(missing.stderr) == f"asr: {tmp_path / 'nosuch.wav'}: no such file"

    text = tmp_path / "notes.txt"
    text.write_text("not audio\n")
    unreadable = asr("transcribe", text)
    assert unreadable.returncode == 2
    assert "cannot read" in one_line(unreadable.stderr)
    assert "as audio" in unreadable.stderr


def test_silence_says_no_speech_was_found(riva_server: ServerThread, tmp_path: Path) -> None:
    silence = tmp_path / "silence.wav"
    sf.write(silence, np.zeros(3 * 16_000, np.int16), 16_000)
    done = asr("transcribe", silence, "--server", riva_server.uri)
    assert done.returncode == 0
    assert done.stdout == ""
    assert one_line(done.stderr) == f"asr: no speech found in {silence}"


def test_nothing_listening_is_one_line_with_a_hint() -> None:
    done = asr("transcribe", WAV, "--server", "127.0.0.1:9", env={"RIVA_RETRY__ATTEMPTS": "2"})
    assert done.returncode == 2
    line = one_line(done.stderr)  # no retry warnings before it
    assert line == (
        "asr: cannot reach 127.0.0.1:9: is a Riva server or asr riva-local running there?"
    )

    health = asr("health", "--server", "127.0.0.1:9")
    assert health.returncode == 1
    assert health.stdout.startswith("127.0.0.1:9: UNREACHABLE")


def test_health_of_a_serving_server(riva_server: ServerThread) -> None:
    done = asr("health", "--server", riva_server.uri)
    assert done.returncode == 0
    assert done.stdout.strip() == f"{riva_server.uri}: SERVING"


def test_server_forms_people_write(riva_server: ServerThread) -> None:
    # A bare host gets Riva's port 50051 (gRPC would pick 443): nothing listens on that
    # loopback address, and the answer names the port that was tried.
    bare = asr("health", "--server", "127.0.0.9")
    assert bare.stdout.startswith("127.0.0.9:50051: UNREACHABLE")

    url = asr("health", "--server", f"http://{riva_server.uri}")
    assert url.returncode == 0, url.stderr
    assert "SERVING" in url.stdout

    ftp = asr("health", "--server", "ftp://riva")
    assert ftp.returncode == 2
    assert "a Riva endpoint is host:port" in one_line(ftp.stderr)


def test_tls_to_a_plaintext_server_is_explained(riva_server: ServerThread) -> None:
    for flags in (
        ("--server", riva_server.uri, "--use-ssl"),
        ("--server", f"https://{riva_server.uri}"),
    ):
        done = asr("models", *flags, env={"RIVA_RETRY__ATTEMPTS": "1"})
        assert done.returncode == 2
        line = one_line(done.stderr)  # no "ssl_transport_security.cc" line from gRPC core
        assert f"TLS handshake with {riva_server.uri} failed" in line
        assert "Drop --use-ssl" in line


def test_wer_checks_its_inputs_before_running(tmp_path: Path) -> None:
    nowhere = asr("wer", tmp_path / "nonexistent")
    assert nowhere.returncode == 1
    assert "no such folder" in one_line(nowhere.stderr)

    no_golden = asr("wer", SPEECH / "jfk", "--golden", tmp_path / "nope.json")
    assert no_golden.returncode == 1
    assert one_line(no_golden.stderr).endswith("nope.json: no such golden file")

    other_set = asr("wer", SPEECH / "jfk", "--golden", GOLDEN / "librispeech_mini-clean.json")
    assert other_set.returncode == 1
    assert "is for set 'librispeech_mini' (clean), not 'jfk' (clean)" in one_line(other_set.stderr)

    other_condition = asr(
        "wer", SPEECH / "jfk", "--noise", "pink:10", "--golden", GOLDEN / "jfk-clean.json"
    )
    assert other_condition.returncode == 1
    assert "not 'jfk' (pink@10dB)" in one_line(other_condition.stderr)

    not_golden = tmp_path / "refs.json"
    not_golden.write_text('{"audio": "x.wav"}')
    refused = asr("wer", SPEECH / "jfk", "--golden", not_golden)
    assert "not a golden file" in one_line(refused.stderr)


def test_wer_ends_with_a_verdict(riva_server: ServerThread, tmp_path: Path) -> None:
    done = asr(
        "wer",
        SPEECH / "jfk",
        "--server",
        riva_server.uri,
        "--golden",
        GOLDEN / "jfk-clean.json",
        "--quiet",
        "--out",
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    verdict = done.stderr.splitlines()[-1]
    assert verdict.startswith("asr wer: PASS: jfk (clean): WER "), done.stderr
    assert (tmp_path / "wer.json").is_file()
