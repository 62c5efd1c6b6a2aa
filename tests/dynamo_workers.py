"""ASR worker subprocesses on Dynamo for the tests: a :class:`Cluster` of two on loopback.

Discovery is Dynamo's file backend in a temporary folder and the request plane TCP on
127.0.0.1, so no etcd or NATS is needed. Workers are real subprocesses with the real
engine (``asr.dynamo.worker.run_worker``); a test may SIGKILL one mid-session. Nothing here
imports the Dynamo runtime: the test modules skip without it.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .conftest import scaled

__all__ = ["ENDPOINT", "JFK", "Cluster", "Worker", "dynamo_env", "running_cluster"]

JFK = (
    "and so my fellow americans ask not what your country can do for you "
    "ask what you can do for your country"
)
ENDPOINT = "test.asr.stream"

_WORKER = (
    "import sys\n"
    "from asr.dynamo.worker import run_worker\n"
    "run_worker(endpoint=sys.argv[1], discovery_backend='file', decode_workers=1,\n"
    "           on_ready=lambda i: print('ready', i, flush=True))\n"
)


def dynamo_env(kv: Path) -> dict[str, str]:
    """Dynamo on one host: file discovery, TCP bound to loopback, quiet logs."""
    return {
        "DYN_DISCOVERY_BACKEND": "file",
        "DYN_FILE_KV": str(kv),
        "DYN_REQUEST_PLANE": "tcp",
        "DYN_TCP_RPC_HOST": "127.0.0.1",
        "DYN_TCP_RESPONSE_STREAM_HOST": "127.0.0.1",
        "DYN_LOG": "warn",
    }


class Worker:
    """One worker subprocess; :attr:`instance` is its Dynamo instance id once ready."""

    def __init__(self, kv: Path, log: Path) -> None:
        self._log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER, ENDPOINT],
            env=os.environ | dynamo_env(kv),
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        self.instance = self._wait_ready(scaled(90))

    def _wait_ready(self, timeout: float) -> int:
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            readable, _, _ = select.select([self.process.stdout], [], [], max(left, 0))
            if not readable:
                self.stop()
                raise TimeoutError(f"worker not ready after {timeout:g}s")
            byte = os.read(self.process.stdout.fileno(), 1)  # unbuffered: select sees all
            if not byte:
                raise RuntimeError(f"worker exited with {self.process.wait()}")
            line += byte
        kind, instance = line.decode().split()
        assert kind == "ready"
        return int(instance)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=scaled(10))

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=scaled(20))
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


class Cluster:
    def __init__(self, root: Path) -> None:
        self.kv = root / "kv"
        self.log = root / "workers.log"
        self.workers = [Worker(self.kv, self.log), Worker(self.kv, self.log)]

    def by_instance(self, instance: int) -> Worker:
        return next(w for w in self.workers if w.instance == instance)

    def replace(self, dead: Worker) -> None:
        """Start a new worker in place of ``dead``, so later tests have two again."""
        dead.stop()
        self.workers[self.workers.index(dead)] = Worker(self.kv, self.log)

    @property
    def live(self) -> set[int]:
        return {w.instance for w in self.workers if w.process.poll() is None}

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()


@contextmanager
def running_cluster(root: Path) -> Iterator[Cluster]:
    """Two workers under ``root`` with the Dynamo environment set for this process too
    (a client in it finds them); both stopped, and the environment restored, after."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in dynamo_env(root / "kv").items():
            env.setenv(name, value)
        cluster = Cluster(root)
        try:
            yield cluster
        finally:
            cluster.stop()
    # Nothing outlives the cluster: every worker process has exited.
    assert all(w.process.poll() is not None for w in cluster.workers)
