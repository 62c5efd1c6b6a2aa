"""A small WebRTC client of the gateway, in Python (aiortc): for tests and benchmarks.

::

    track = PcmTrack(pcm16)                       # 16 kHz mono PCM16, played in real time
    async with await connect(base_url, track, query={"interim_results": "true"}) as call:
        async for message in call.messages():     # the contract's JSON messages
            ...
        await call.send({"type": "end"})
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import json
import urllib.request
from collections.abc import AsyncIterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlencode

import av
import numpy as np
from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack

from asr.audio import TARGET_SAMPLE_RATE

from .peer import host_addresses
from .routes import OFFER_PATH, ice_configuration

__all__ = ["PcmTrack", "WebRtcCall", "connect"]

FRAME_SECONDS = 0.02
"""20 ms per frame, as a browser sends Opus."""


class PcmTrack(MediaStreamTrack):
    """16 kHz mono PCM16 played in real time as 20 ms frames, then silence (a microphone
    that stays open).

    Attributes:
        sent: ``(audio seconds sent so far, loop time)`` after each frame of the clip.
        done: Set when the clip has been sent.
    """

    kind = "audio"

    def __init__(self, pcm16: bytes) -> None:
        super().__init__()
        self._samples = np.frombuffer(pcm16, dtype="<i2")
        self._step = int(TARGET_SAMPLE_RATE * FRAME_SECONDS)
        self._index = 0
        self._start: float | None = None
        self.sent: list[tuple[float, float]] = []
        self.done = asyncio.Event()

    async def recv(self) -> av.AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._index * FRAME_SECONDS
        if (wait := due - loop.time()) > 0:
            await asyncio.sleep(wait)
        offset = self._index * self._step
        chunk = self._samples[offset : offset + self._step]
        if len(chunk) < self._step:
            chunk = np.concatenate([chunk, np.zeros(self._step - len(chunk), dtype="<i2")])
        frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = TARGET_SAMPLE_RATE
        frame.pts = offset
        frame.time_base = fractions.Fraction(1, TARGET_SAMPLE_RATE)
        self._index += 1
        if offset < len(self._samples):
            self.sent.append(
                (min(offset + self._step, len(self._samples)) / TARGET_SAMPLE_RATE, loop.time())
            )
            if offset + self._step >= len(self._samples):
                self.done.set()
        return frame


class WebRtcCall:
    """A connected peer: the contract's messages on its data channel."""

    def __init__(self, pc: RTCPeerConnection, channel: RTCDataChannel) -> None:
        self.pc = pc
        self.channel = channel
        self.location = ""
        """The session's resource (``DELETE`` hangs up)."""
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        channel.on("message", self._on_message)
        channel.on("close", lambda: self._inbox.put_nowait(None))

    def _on_message(self, message: Any) -> None:
        if isinstance(message, str):
            self._inbox.put_nowait(json.loads(message))

    async def send(self, message: Mapping[str, Any]) -> None:
        """Send a client message (``end``, ``finalize``, ``config``)."""
        self.channel.send(json.dumps(message))

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        """The server's messages until the data channel closes."""
        while (message := await self._inbox.get()) is not None:
            yield message

    async def close(self) -> None:
        await self.pc.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _post(url: str, body: bytes, content_type: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("content-type", content_type)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


async def connect(
    base_url: str,
    track: MediaStreamTrack,
    *,
    query: Mapping[str, str] | None = None,
    addresses: Sequence[str] = ("127.0.0.1",),
    timeout: float = 10.0,
) -> WebRtcCall:
    """Offer ``track`` and a data channel to the gateway at ``base_url``; the call once
    the data channel is open.

    Args:
        base_url: ``http://host:port`` of the gateway.
        track: The audio to send.
        query: The session's options (and ``api_key`` or ``token``).
        addresses: Where host candidates are gathered (loopback by default).
        timeout: Seconds the connection may take.

    Raises:
        urllib.error.HTTPError: The offer was refused.
        TimeoutError: The peer did not connect in time.
    """
    pc = RTCPeerConnection(ice_configuration(()))
    try:
        pc.addTransceiver(track, direction="sendonly")
        channel = pc.createDataChannel("asr")
        call = WebRtcCall(pc, channel)  # listening before the first message can arrive
        opened = asyncio.Event()
        channel.on("open", opened.set)
        with host_addresses(addresses):
            await pc.setLocalDescription(await pc.createOffer())
        url = base_url + OFFER_PATH + (f"?{urlencode(query)}" if query else "")
        body = json.dumps({"sdp": pc.localDescription.sdp, "type": "offer"}).encode()
        _, headers, answer = await asyncio.to_thread(_post, url, body, "application/json")
        description = json.loads(answer)
        await pc.setRemoteDescription(RTCSessionDescription(**description))
        async with asyncio.timeout(timeout):
            await opened.wait()
        call.location = {k.lower(): v for k, v in headers.items()}.get("location", "")
        return call
    except BaseException:
        with contextlib.suppress(Exception):
            await pc.close()
        raise
