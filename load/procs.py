"""Server subprocesses and their CPU time and memory, read through :mod:`psutil`.

Each server runs in its own process so that the CPU it uses is its own: the embedded Riva
server is ``python -m asr riva-local --port 0`` (it prints ``asr riva-local: serving on
HOST:PORT``), the WebSocket server ``python -m load.gateway`` (prints ``load.gateway:
serving on ws://...``). Readiness is the printed address, which each prints only once it
listens; no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

__all__ = [
    "CpuWindow",
    "ProcSample",
    "ServerProcess",
    "read_proc",
    "start_gateway",
    "start_riva",
    "start_serve",
]

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: CPU seconds so far (user + system), resident memory, open
    file descriptors and threads. Leaks of sockets, streams or threads show as counts that
    do not come back down."""

    cpu_seconds: float
    rss_bytes: int
    fds: int
    threads: int

    def as_dict(self) -> dict[str, float | int]:
        """Memory in MB, fds and threads (what the soak compares against its baseline)."""
        return {
            "rss_mb": round(self.rss_bytes / 2**20, 1),
            "fds": self.fds,
            "threads": self.threads,
        }


def read_proc(pid: int) -> ProcSample | None:
    """A live process's :class:`ProcSample`; ``None`` once it is gone."""
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            cpu = proc.cpu_times()
            return ProcSample(
                cpu_seconds=cpu.user + cpu.system,
                rss_bytes=proc.memory_info().rss,
                fds=proc.num_fds(),
                threads=proc.num_threads(),
            )
    except (psutil.NoSuchProcess, psutil.AccessDenied):  # ZombieProcess included
        return None


class ServerProcess:
    """A server in a subprocess, ready once it printed a line matching ``ready``.

    Args:
        name: Label in reports (``"riva"``, ``"gateway"``).
        argv: The command.
        ready: Pattern of the readiness line; its group 1 is the address.
        env: Extra environment (over ``PYTHONPATH`` too).
        cwd: Working directory; the repository root when omitted.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        ready: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.ready = re.compile(ready)
        self.env = env or {}
        self.cwd = cwd or REPO
        self.address: str | None = None
        self.peak_rss = 0
        self._proc: asyncio.subprocess.Process | None = None
        self._drain: asyncio.Task[None] | None = None
        # Closed in stop(), after the process is gone.
        self._log = tempfile.NamedTemporaryFile(prefix=f"load-{name}-", suffix=".log", delete=False)

    @property
    def pid(self) -> int:
        assert self._proc is not None, "not started"
        return self._proc.pid

    @property
    def log_path(self) -> str:
        """Where the server's stderr goes (kept after a failure)."""
        return self._log.name

    async def start(self, timeout: float = 120.0) -> str:
        """Start and wait for the readiness line; returns the address it printed.

        Raises:
            RuntimeError: The process exited or did not get ready within ``timeout``.
        """
        env = dict(os.environ)
        paths = [str(REPO / "src"), str(REPO / "server"), str(REPO)]
        env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
        env.update(self.env)
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv,
            stdout=asyncio.subprocess.PIPE,
            stderr=self._log,
            stdin=asyncio.subprocess.DEVNULL,
            env=env,
            cwd=self.cwd,
        )
        assert self._proc.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    line = (await self._proc.stdout.readline()).decode(errors="replace")
                    if not line:
                        raise RuntimeError(
                            f"{self.name} exited ({await self._proc.wait()}) before it was "
                            f"ready; see {self.log_path}"
                        )
                    if match := self.ready.search(line):
                        self.address = match.group(1)
                        break
        except TimeoutError as exc:
            await self.stop()
            raise RuntimeError(
                f"{self.name} not ready in {timeout} s; see {self.log_path}"
            ) from exc
        self._drain = asyncio.create_task(self._drain_stdout())
        return self.address

    async def _drain_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        while await self._proc.stdout.readline():
            pass

    def sample(self) -> ProcSample | None:
        """CPU time, memory, fds and threads now (:func:`read_proc`); also tracks the peak
        resident memory. ``None`` once the process has exited."""
        sample = read_proc(self.pid) if self.running else None
        if sample is not None:
            self.peak_rss = max(self.peak_rss, sample.rss_bytes)
        return sample

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.returncode is None

    async def kill(self) -> int | None:
        """SIGKILL, as a crash would end it: no shutdown, no drain. Returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        return await proc.wait()

    async def stop(self, grace: float = 15.0) -> int | None:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit status."""
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                async with asyncio.timeout(grace):
                    await proc.wait()
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if self._drain is not None:
            self._drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drain
        self._log.close()
        if proc.returncode == 0 and not self.had_errors():
            with contextlib.suppress(OSError):
                os.unlink(self._log.name)
        return proc.returncode

    def had_errors(self) -> bool:
        """Whether the server logged an error or a traceback (its log is then kept)."""
        with contextlib.suppress(OSError):
            text = Path(self._log.name).read_text(errors="replace")
            return " ERROR " in text or "Traceback" in text
        return False


_PROFILED = """
import cProfile, runpy, sys, time
# CPU time of the event loop's thread, not wall time: waiting in epoll costs nothing.
profiler = cProfile.Profile(time.thread_time)
sys.argv[0] = {module!r}
profiler.enable()
try:
    runpy.run_module({module!r}, run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    profiler.disable()
    profiler.dump_stats({out!r})
"""
"""``python -c`` code running a module under :mod:`cProfile` (main thread's CPU time)."""


def _python(module: str, *args: str, **options: object) -> list[str]:
    """``python -m module ARGS --option value ...``; ``max_streams`` becomes
    ``--max-streams``."""
    argv = [sys.executable, "-m", module, *args]
    for name, value in options.items():
        argv += [f"--{name.replace('_', '-')}", str(value)]
    return argv


async def _started(server: ServerProcess, timeout: float) -> ServerProcess:
    await server.start(timeout)
    return server


async def start_riva(*, max_streams: int, port: int = 0, timeout: float = 120.0) -> ServerProcess:
    """``asr riva-local`` on 127.0.0.1 (``port`` 0: a free one), at most ``max_streams``."""
    argv = _python("asr", "riva-local", host=HOST, port=port, max_streams=max_streams)
    return await _started(ServerProcess("riva", argv, r"serving on (\S+)"), timeout)


async def start_gateway(
    riva_uri: str,
    *,
    max_sessions: int,
    timeout: float = 60.0,
    name: str = "gateway",
    repo: Path | None = None,
    profile: Path | None = None,
) -> ServerProcess:
    """The WebSocket server (plain ws:// on 127.0.0.1, a free port) in front of ``riva_uri``.

    Args:
        riva_uri: The Riva endpoint.
        max_sessions: Its session limit.
        timeout: Seconds it may take to listen.
        name: Label in reports.
        repo: Run the server of this checkout (an absolute path; another build, to
            compare) instead.
        profile: Run it under :mod:`cProfile`, the statistics written here at its exit.
    """
    argv = _python("load.gateway", riva=riva_uri, max_sessions=max_sessions)
    if profile is not None:
        argv[1:3] = ["-c", _PROFILED.format(module="load.gateway", out=str(profile))]
    env, cwd = None, None
    if repo is not None:
        cwd = repo
        env = {"PYTHONPATH": os.pathsep.join(str(cwd / p) for p in ("src", "server", "."))}
    server = ServerProcess(name, argv, r"serving on (\S+)", env=env, cwd=cwd)
    return await _started(server, timeout)


async def start_serve(riva_uri: str, *, max_sessions: int, timeout: float = 60.0) -> ServerProcess:
    """``asr serve`` itself (plain ws:// on 127.0.0.1, a free port) in front of ``riva_uri``.

    Its address is the printed ``http://HOST:PORT``; the stream URL is that with ``ws://``
    and ``/v1/audio/transcriptions/stream``. The session limit goes in through the
    environment (``ASR_SERVER_LIMITS__MAX_SESSIONS``), as an operator would set it; no
    certificate is passed, so no TLS.
    """
    server = ServerProcess(
        "gateway",
        _python("asr", "serve", host=HOST, port=0, server=riva_uri),
        r"API on (http://\S+)",
        env={"ASR_SERVER_LIMITS__MAX_SESSIONS": str(max_sessions)},
    )
    return await _started(server, timeout)


class CpuWindow:
    """CPU seconds and wall time a set of processes used between two readings."""

    def __init__(self, servers: list[ServerProcess]) -> None:
        self.servers = servers
        self.wall = time.monotonic()
        self.self_cpu = time.process_time()
        self.start = {s.name: s.sample() for s in servers}

    def close(self) -> dict[str, dict[str, float]]:
        """Per process: CPU seconds, share of one core, peak and current RSS in MB."""
        wall = time.monotonic() - self.wall
        out: dict[str, dict[str, float]] = {}
        for s in self.servers:
            before, after = self.start[s.name], s.sample()
            if before is None or after is None:
                continue
            cpu = after.cpu_seconds - before.cpu_seconds
            out[s.name] = {
                "cpu_seconds": round(cpu, 3),
                "cpu_percent_of_core": _share(cpu, wall),
                "rss_mb": round(after.rss_bytes / 2**20, 1),
                "peak_rss_mb": round(s.peak_rss / 2**20, 1),
                "threads": after.threads,
            }
        cpu = time.process_time() - self.self_cpu
        out["load_tool"] = {"cpu_seconds": round(cpu, 3), "cpu_percent_of_core": _share(cpu, wall)}
        return out


def _share(cpu: float, wall: float) -> float:
    """CPU seconds over wall seconds, in % of one core."""
    return round(100 * cpu / wall, 1) if wall else 0.0
