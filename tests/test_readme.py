"""The README as a new user follows it: ``./scripts/run``, then every Python snippet as printed.

The snippets are taken from README.md itself and run unchanged, from a folder holding the
files they name (``speech.wav``, and ``certs/`` from ``./scripts/run``), against the
servers ``./scripts/run`` starts on their documented ports (gRPC 50051, HTTPS 8443).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import REPO, SPEECH, scaled

README = REPO / "README.md"
PORTS = (50051, 8443)


def python_snippets() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```$", README.read_text(), re.S | re.M)


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def scripts_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``./scripts/run`` started as the README says; yields a folder to run snippets in."""
    busy = [port for port in PORTS if port_in_use(port)]
    if busy:
        pytest.fail(f"ports {busy} are in use: stop ./scripts/run (or what holds them) first")
    folder = tmp_path_factory.mktemp("readme")
    (folder / "speech.wav").symlink_to(SPEECH / "jfk" / "jfk.wav")
    (folder / "certs").symlink_to(REPO / "certs", target_is_directory=True)
    log = folder / "scripts-run.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIVA_", "ASR_SERVER_"))}
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["./scripts/run"],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + scaled(180)
        while "asr serve: demo page and API on" not in log.read_text():
            assert proc.poll() is None, f"./scripts/run exited:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"./scripts/run not ready:\n{log.read_text()}"
            time.sleep(0.2)
        yield folder
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C, as the script's comment says
        try:
            proc.wait(timeout=scaled(30))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
    # Ctrl-C stopped both servers.
    assert not any(port_in_use(port) for port in PORTS), log.read_text()


def test_readme_has_the_snippets_this_module_runs() -> None:
    snippets = python_snippets()
    assert len(snippets) == 3
    assert "RivaASRClient" in snippets[0]
    assert "wss://localhost:8443" in snippets[1]
    assert "RetrySettings" in snippets[2]  # the settings as keyword arguments


@pytest.mark.timeout(scaled(300))
@pytest.mark.parametrize("index", range(len(python_snippets())))
def test_readme_snippet_runs_as_printed(scripts_run: Path, index: int) -> None:
    done = subprocess.run(
        [sys.executable, "-c", python_snippets()[index]],
        cwd=scripts_run,
        capture_output=True,
        text=True,
        timeout=scaled(120),
    )
    assert done.returncode == 0, done.stderr
    finals = [
        line for line in done.stdout.splitlines() if line.startswith(("final", "transcript.final"))
    ]
    assert finals, done.stdout
    assert "what your country can do for you" in " ".join(finals).lower()
