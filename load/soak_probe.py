"""What the soak reads from the outside while it runs: the gateway's HTTP probes and
metrics, and the resources of each server process.

``GET /readyz`` is polled as an orchestrator's readiness probe would poll it (it is also
what lets the gateway notice early that Riva is back); ``GET /metrics`` gives the gateway's
own counts of sessions and audio, to set against what the clients saw.
"""

from __future__ import annotations

import asyncio
import time
import urllib.error
import urllib.request
from typing import Any

from .procs import ServerProcess

__all__ = ["Timeline", "get_status", "metrics", "parse_metrics"]

_METRICS = {
    "asr_gateway_active_sessions": "active_sessions",
    "asr_gateway_active_streams": "active_streams",
    "asr_gateway_sessions_started_total": "sessions_started",
    "asr_gateway_audio_seconds_total": "audio_seconds",
}


def _get(url: str, timeout: float) -> tuple[int | None, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, ""
    except (urllib.error.URLError, OSError):
        return None, ""


async def get_status(url: str, timeout: float = 5.0) -> int | None:
    """HTTP status of ``GET url``; ``None`` when nothing answered."""
    status, _ = await asyncio.to_thread(_get, url, timeout)
    return status


def parse_metrics(text: str) -> dict[str, float]:
    """The gateway's session and audio figures from its Prometheus text (labels summed)."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, _, value = line.rpartition(" ")
        key = _METRICS.get(name.split("{", 1)[0])
        if key is not None:
            out[key] = out.get(key, 0.0) + float(value)
    return out


async def metrics(base_url: str, timeout: float = 5.0) -> dict[str, float] | None:
    """:func:`parse_metrics` of ``GET base_url/metrics``; ``None`` when it did not answer."""
    status, body = await asyncio.to_thread(_get, f"{base_url}/metrics", timeout)
    return parse_metrics(body) if status == 200 else None


class Timeline:
    """Once a second: sessions open and admitted, and each server's memory, fds, threads;
    every ``probe_interval`` seconds the gateway's ``/readyz`` status, kept as changes.

    Args:
        t0: ``time.monotonic()`` at the start of the soak.
        base_url: The gateway's ``http://HOST:PORT``.
        probe_interval: Seconds between readiness probes; 0 for none.
    """

    def __init__(self, t0: float, base_url: str, probe_interval: float) -> None:
        self.t0 = t0
        self.base_url = base_url
        self.probe_interval = probe_interval
        self.samples: list[dict[str, Any]] = []
        self.readiness: list[dict[str, Any]] = []
        self.peak: dict[str, dict[str, float]] = {}

    def sample(self, servers: dict[str, ServerProcess], open_now: int, admitted: int) -> None:
        row: dict[str, Any] = {
            "t": round(time.monotonic() - self.t0, 1),
            "open": open_now,
            "admitted": admitted,
        }
        for name, server in servers.items():
            res = server.sample()
            if res is None:
                continue
            row[name] = res.as_dict()
            peak = self.peak.setdefault(name, {})
            for key, value in row[name].items():
                peak[key] = max(peak.get(key, 0), value)
        self.samples.append(row)

    async def probe(self) -> None:
        while self.probe_interval > 0:
            status = await get_status(f"{self.base_url}/readyz", timeout=self.probe_interval)
            if not self.readiness or self.readiness[-1]["status"] != status:
                self.readiness.append({"t": round(time.monotonic() - self.t0, 1), "status": status})
            await asyncio.sleep(self.probe_interval)
