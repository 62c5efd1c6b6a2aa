"""What the tests of ``POST /v1/audio/transcriptions`` share: the gateway with API keys
for the ``openai`` SDK, raw multipart requests as curl sends them, encoded uploads and
subtitle cues parsed back.
"""

from __future__ import annotations

import io
import re
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import av
import numpy as np
import openai
from av.audio.stream import AudioStream

from asr.wer import word_error_rate
from asr_server.app import GatewayServer

from .conftest import scaled
from .helpers import API_KEY, JFK_WORDS, SECRET, gateway

__all__ = [
    "JFK_WORDS",
    "ffmpeg_encoded",
    "multipart",
    "parse_cues",
    "post",
    "rest_gateway",
    "sdk",
    "wer",
]


def wer(reference: str, hypothesis: str) -> float:
    return word_error_rate([reference], [hypothesis])


_CLIENTS: list[openai.AsyncOpenAI] = []  # closed with the gateway (rest_gateway)


def sdk(gw: GatewayServer, key: str = API_KEY) -> openai.AsyncOpenAI:
    """The official SDK's client for ``gw`` (no retries: each refusal is seen as it is)."""
    client = openai.AsyncOpenAI(
        base_url=gw.base_url + "/v1", api_key=key, max_retries=0, timeout=scaled(120)
    )
    _CLIENTS.append(client)
    return client


@asynccontextmanager
async def rest_gateway(riva_uri: str, **settings: Any) -> AsyncIterator[GatewayServer]:
    settings.setdefault("api_keys", (API_KEY,))
    try:
        async with gateway(riva_uri, token_secret=SECRET, static_dir=None, **settings) as gw:
            yield gw
    finally:
        while _CLIENTS:
            await _CLIENTS.pop().close()


def multipart(*parts: tuple[str, bytes, str | None]) -> tuple[bytes, str]:
    """A multipart/form-data body of (name, value, filename) parts, in that order."""
    boundary = "----asr-test-boundary-7c1d"
    body = b""
    for name, value, filename in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        body += value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def post(
    gw: GatewayServer, body: bytes, content_type: str, key: str | None = API_KEY
) -> tuple[int, dict[str, str], bytes]:
    """POST with urllib, as curl would: status, headers, body."""
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(
        gw.base_url + "/v1/audio/transcriptions", data=body, headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=scaled(60)) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def ffmpeg_encoded(container: str, codec: str) -> bytes:
    """One second of silence in a container libsndfile does not read (PyAV, test only)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container) as out:
        stream = cast(AudioStream, out.add_stream(codec, rate=48_000))
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 48_000), np.float32), format="fltp", layout="mono"
        )
        frame.sample_rate = 48_000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return buffer.getvalue()


def parse_cues(body: str, sep: str) -> list[tuple[str, float, float, str]]:
    """Cues parsed back (number or "", start, end, text); fails unless they are the body."""
    time = r"(\d\d):(\d\d):(\d\d)" + re.escape(sep) + r"(\d{3})"
    number = r"(\d+)\n" if sep == "," else "()"
    matches = list(re.finditer(number + time + " --> " + time + r"\n([^\n]+)\n\n", body))
    assert "".join(m.group(0) for m in matches) == body
    result = []
    for m in matches:
        h1, m1, s1, ms1, h2, m2, s2, ms2 = (int(g) for g in m.groups()[1:9])
        start, end = h1 * 3600 + m1 * 60 + s1 + ms1 / 1000, h2 * 3600 + m2 * 60 + s2 + ms2 / 1000
        result.append((m.group(1), start, end, m.group(10)))
    return result
