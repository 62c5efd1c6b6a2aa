"""A :class:`~asr_server.connection.Transport` over a WebRTC peer: the data channel carries
the contract's JSON messages both ways, the audio track the client's audio.

:class:`~asr_server.ws_contract.ContractConnection` runs on it unchanged. What it reads
(:meth:`PeerTransport.receive`) is each data channel message as text, and the audio
track's frames, decoded by aiortc and converted to 16 kHz mono PCM16
(:class:`~asr_server.webrtc.audio.FrameConverter`), as binary frames; what it sends goes
on the data channel. The contract's close codes have no frame to travel in: the client
reads how the session ended from its last message (``session.end`` or ``error``), and
:meth:`PeerTransport.ended` says what a WebSocket's close code would have:

- the client closed the data channel or the peer connection, or hung up with ``DELETE``:
  1000, by the client;
- the peer vanished (no RTP for ``media_timeout`` s, ICE consent lost): 1006;
- the server closed: its code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from asr.errors import AudioFormatError
from asr.logs import ContextAdapter

from ..connection import Ending, TransportClosed
from .audio import FrameConverter

__all__ = ["PeerTransport"]

logger = logging.getLogger("asr.server.webrtc")

_HIGH_WATER = 256 * 1024
"""Bytes the data channel may buffer before :meth:`PeerTransport.send` waits; SCTP's flow
control then backs up into the connection's outbox, which closes a client that does not
read (``client_too_slow``), as a full TCP window does for a WebSocket."""
_LOW_WATER = 64 * 1024

_MAX_QUEUED = 500
"""Frames read and not yet taken (10 s of 20 ms audio frames): RTP has no back-pressure,
so past this audio is dropped (logged) rather than held without bound."""


class PeerTransport:
    """The contract's connection over one peer's data channel and audio track.

    Args:
        pc: The connected peer connection (closed by its owner, not here).
        channel: The open data channel of the contract's messages.
        track: The client's audio track.
        media_timeout: Seconds without an audio frame after which the peer is gone (1006).
        log: The session's logger.
    """

    def __init__(
        self,
        pc: RTCPeerConnection,
        channel: RTCDataChannel,
        track: MediaStreamTrack,
        *,
        media_timeout: float,
        log: ContextAdapter,
    ) -> None:
        self._pc = pc
        self._channel = channel
        self._track = track
        self._media_timeout = media_timeout
        self._log = log
        self._inbox: asyncio.Queue[str | bytes | None] = asyncio.Queue()
        self._queued_audio = 0
        self._dropped_audio = 0
        self._received_end = False
        self._ending: Ending | None = None
        self._writable = asyncio.Event()
        self._writable.set()
        self._closed = asyncio.Event()
        self._converter = FrameConverter()
        self._warned_binary = False
        channel.bufferedAmountLowThreshold = _LOW_WATER
        channel.on("message", self._on_message)
        channel.on("close", self._on_channel_close)
        channel.on("bufferedamountlow", self._writable.set)
        pc.on("connectionstatechange", self._on_state)
        self._audio = asyncio.create_task(self._read_audio())

    # -- Transport ------------------------------------------------------------------

    async def receive(self) -> str | bytes | None:
        if self._received_end:
            return None
        item = await self._inbox.get()
        if item is None:
            self._received_end = True
        elif isinstance(item, bytes):
            self._queued_audio -= 1
        return item

    async def send(self, text: str) -> None:
        while True:
            if self._ending is not None or self._channel.readyState != "open":
                raise TransportClosed
            if self._channel.bufferedAmount <= _HIGH_WATER:
                break
            self._writable.clear()
            await self._writable.wait()
        self._channel.send(text)

    def writable(self) -> bool:
        return (
            self._ending is None
            and self._channel.readyState == "open"
            and self._channel.bufferedAmount <= _HIGH_WATER
        )

    async def close(self, code: int, reason: str) -> None:
        """End the session: the data channel is closed once the messages queued on it
        are sent (the stream reset follows them, RFC 8831 section 6.7), and this returns
        when the client has acknowledged it; the owner then closes the peer connection."""
        del reason  # said in the last message (session.end or error)
        self._end(Ending(code, "server"))
        if self._channel.readyState in ("connecting", "open"):
            self._channel.close()
        if self._channel.readyState != "closed":
            await self._closed.wait()

    def abort(self) -> None:
        # The owner closes the peer connection as soon as the session is over; nothing
        # to wait for here.
        self._end(Ending(1006, "server"))

    def ended(self) -> Ending:
        return self._ending if self._ending is not None else Ending(1006, "client")

    # -- the owner's ------------------------------------------------------------------

    def hang_up(self) -> None:
        """The client ended the session out of band (``DELETE`` of its resource)."""
        self._end(Ending(1000, "client"))

    async def aclose(self) -> None:
        """Stop reading the track (the session is over)."""
        self._end(self.ended())
        self._audio.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._audio
        self._channel.remove_listener("message", self._on_message)
        self._channel.remove_listener("close", self._on_channel_close)
        self._channel.remove_listener("bufferedamountlow", self._writable.set)
        self._pc.remove_listener("connectionstatechange", self._on_state)
        if self._dropped_audio:
            self._log.warning("%d audio frames were dropped: not read in time", self._dropped_audio)

    # -- events -----------------------------------------------------------------------

    def _end(self, ending: Ending) -> None:
        if self._ending is None:
            self._ending = ending
            self._inbox.put_nowait(None)
        self._writable.set()  # a send waiting for room finds the connection closed

    def _on_message(self, message: Any) -> None:
        if self._ending is not None:
            return
        if isinstance(message, str):
            self._inbox.put_nowait(message)
        elif not self._warned_binary:
            # Audio travels on the track; binary messages on the channel are not part of
            # the contract over WebRTC (docs/operations.md).
            self._warned_binary = True
            self._log.warning("binary data channel messages are ignored: audio goes on the track")

    def _on_channel_close(self) -> None:
        self._closed.set()
        self._end(Ending(1000, "client"))

    def _on_state(self) -> None:
        state = self._pc.connectionState
        if state == "failed":
            self._end(Ending(1006, "client"))  # ICE consent lost, or DTLS failed
        elif state == "closed":
            self._end(Ending(1000, "client"))

    async def _read_audio(self) -> None:
        try:
            while True:
                try:
                    async with asyncio.timeout(self._media_timeout):
                        frame = await self._track.recv()
                except TimeoutError:
                    self._log.info("no audio for %g s: the peer is gone", self._media_timeout)
                    self._end(Ending(1006, "client"))
                    return
                pcm = self._converter.convert(frame)
                if not pcm or self._ending is not None:
                    continue
                if self._queued_audio >= _MAX_QUEUED:
                    self._dropped_audio += 1
                    continue
                self._queued_audio += 1
                self._inbox.put_nowait(pcm)
        except MediaStreamError:
            self._end(Ending(1006, "client"))  # the track ended: the peer connection closed
        except AudioFormatError as exc:
            self._log.warning("audio track not decodable: %s", exc)
            self._end(Ending(1006, "client"))
