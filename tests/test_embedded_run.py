"""``asr.embedded.run`` as a process: ready callback, health, graceful stop on SIGTERM."""

from __future__ import annotations

import signal
import subprocess
import sys

import grpc
import riva.client.proto.health_pb2 as health_pb2
import riva.client.proto.health_pb2_grpc as health_grpc

import asr.embedded

from .conftest import scaled

SERVE = (
    "from asr.embedded.server import run; "
    "run(host='127.0.0.1', port=0, max_streams=2, "
    "on_ready=lambda address: print('ready', address, flush=True))"
)


def test_embedded_exports_are_sorted_and_exist() -> None:
    assert list(asr.embedded.__all__) == sorted(set(asr.embedded.__all__))
    assert all(hasattr(asr.embedded, name) for name in asr.embedded.__all__)


def test_run_serves_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", SERVE], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until on_ready ran: no sleeping
        assert line.startswith("ready 127.0.0.1:"), (line, process.stderr and process.stderr.read())
        address = line.split()[1]
        with grpc.insecure_channel(address) as channel:
            reply = health_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="nvidia.riva.asr.RivaSpeechRecognition"),
                timeout=scaled(10),
            )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=scaled(30)) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
