"""``pip install asr`` is the Riva client alone.

The wheel is built and installed without extras into a fresh virtual environment; from
there the client streams JFK to an embedded server run by this (full) environment, and
none of the extras' heavy modules is imported along the way. Each part that needs an extra
says which, in one line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from asr.extras import EXTRAS

from .conftest import REPO, SPEECH, ServerThread, scaled

HEAVY = ("faster_whisper", "onnxruntime", "ctranslate2", "matplotlib", "prometheus_client")


def run(*args: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, timeout=scaled(600), cwd=cwd
    )


@pytest.fixture(scope="module")
def lean_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of a fresh venv holding the wheel and its core dependencies only."""
    root = tmp_path_factory.mktemp("lean")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", root, REPO)
    assert built.returncode == 0, built.stderr
    wheel = next(root.glob("asr-*.whl"))
    venv = root / "venv"
    assert run(sys.executable, "-m", "venv", venv).returncode == 0
    python = venv / "bin" / "python"
    installed = run(python, "-m", "pip", "install", "-q", "-c", REPO / "constraints.txt", wheel)
    assert installed.returncode == 0, installed.stderr
    yield python


@pytest.mark.timeout(scaled(900))
def test_the_core_streams_without_the_extras(lean_python: Path, riva_server: ServerThread) -> None:
    for modules in EXTRAS.values():
        # websockets comes with nvidia-riva-client itself (its realtime client).
        for module in set(modules) - {"websockets"}:
            found = run(
                lean_python, "-c", f"import importlib.util as u; print(u.find_spec({module!r}))"
            )
            assert found.stdout.strip() == "None", f"{module} is installed without its extra"
    script = textwrap.dedent(
        f"""
        import asyncio, sys
        from asr import Final, RivaASRClient, chunk_bytes, load_pcm16

        async def main():
            pcm = load_pcm16({str(SPEECH / "jfk" / "jfk.wav")!r})
            async with RivaASRClient(uri={riva_server.uri!r}) as client:
                events = [e async for e in client.stream(chunk_bytes(pcm, 100))]
            print(" ".join(e.text for e in events if isinstance(e, Final)))

        asyncio.run(main())
        print(sorted(m for m in {HEAVY!r} if m in sys.modules))
        """
    )
    done = run(lean_python, "-c", script)
    assert done.returncode == 0, done.stderr
    text, imported = done.stdout.strip().splitlines()
    assert "ask not what your country can do for you" in text.lower()
    assert imported == "[]"


@pytest.mark.parametrize(
    ("command", "extra"),
    [
        (["riva-local", "--port", "0"], "embedded"),
        (["serve", "--port", "0"], "server"),
        (["make-cert", "certs"], "server"),
        (["wer", str(SPEECH / "jfk")], "eval"),
        (["dynamo-worker"], "dynamo"),
    ],
)
def test_a_missing_extra_is_named(
    lean_python: Path, tmp_path: Path, command: list[str], extra: str
) -> None:
    done = run(lean_python, "-m", "asr", *command, cwd=tmp_path)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert f"pip install 'asr[{extra}]'" in lines[0]


def test_library_imports_name_their_extra(lean_python: Path) -> None:
    for module, extra in (("asr.wer", "eval"), ("asr.embedded", "embedded")):
        done = run(lean_python, "-c", f"import {module}")
        assert done.returncode == 1
        assert done.stderr.strip().splitlines()[-1].startswith("asr.extras.MissingExtraError")
        assert f"asr[{extra}]" in done.stderr
