"""One WebRTC peer from its answer to its end: connect within the timeout, then the
contract's session over a :class:`~asr_server.webrtc.transport.PeerTransport`.

The peer holds its place in the gateway's admission from the offer on (a peer that is
still connecting uses a UDP socket and tasks like a session does, and the limits are the
WebSocket's), so a server shutdown closes connecting peers too (:meth:`WebRtcPeer.shutdown`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar

import aioice.ice
from aiortc import RTCDataChannel, RTCPeerConnection
from aiortc.mediastreams import MediaStreamTrack

from asr.logs import ContextAdapter

from ..state import Gateway
from ..ws_contract import ContractConnection
from .metrics import INTERFACE, WebRtcMetrics
from .session import WebRtcSession
from .transport import PeerTransport

__all__ = ["WebRtcPeer", "host_addresses"]

logger = logging.getLogger("asr.server.webrtc")

_HOST_ADDRESSES: ContextVar[tuple[str, ...] | None] = ContextVar(
    "asr_webrtc_host_addresses", default=None
)
_aioice_host_addresses = aioice.ice.get_host_addresses


def _host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    chosen = _HOST_ADDRESSES.get()
    if chosen is None:
        return _aioice_host_addresses(use_ipv4, use_ipv6)
    return [a for a in chosen if (use_ipv6 if ":" in a else use_ipv4)]


# aiortc offers no choice of the addresses its ICE agent gathers host candidates on:
# aioice takes every interface's but loopback's from this module-level function, which
# gather_candidates() looks up at each call. It is replaced once by one that returns the
# addresses set for the calling context, or aioice's own when none is set.
aioice.ice.get_host_addresses = _host_addresses


@contextlib.contextmanager
def host_addresses(addresses: Sequence[str]) -> Iterator[None]:
    """Gather host candidates on ``addresses`` only, for peer connections whose local
    description is set inside the ``with`` block (empty: every interface's but loopback,
    aioice's default). ``("127.0.0.1",)`` keeps peers on one machine on loopback."""
    token = _HOST_ADDRESSES.set(tuple(addresses) or None)
    try:
        yield
    finally:
        _HOST_ADDRESSES.reset(token)


class WebRtcPeer:
    """A peer connection and, once it is connected, its session.

    Args:
        gw: The gateway's shared parts.
        metrics: WebRTC's collectors.
        pc: The peer connection, its remote description set.
        session_id: The session's id (also in the resource's URL).
        query: The offer's query string, parsed with ``parse_qs``.
        owner: Who the session's recording belongs to (``owner_of`` its API key).
        log: The session's logger.
    """

    def __init__(
        self,
        gw: Gateway,
        metrics: WebRtcMetrics,
        pc: RTCPeerConnection,
        *,
        session_id: str,
        query: Mapping[str, Sequence[str]],
        owner: str,
        log: ContextAdapter,
    ) -> None:
        self._gw = gw
        self._metrics = metrics
        self.pc = pc
        self.session_id = session_id
        self._query = query
        self._owner = owner
        self._log = log
        self._channel: RTCDataChannel | None = None
        self._track: MediaStreamTrack | None = None
        self._changed = asyncio.Event()
        self._stopped = False
        self._transport: PeerTransport | None = None
        self._connection: ContractConnection | None = None
        pc.on("datachannel", self._on_datachannel)
        pc.on("track", self._on_track)
        pc.on("connectionstatechange", self._changed.set)
        pc.on("iceconnectionstatechange", self._changed.set)

    # -- Drainable --------------------------------------------------------------------

    @property
    def riva_streams(self) -> int:
        return self._connection.riva_streams if self._connection is not None else 0

    def shutdown(self, timeout: float) -> None:
        if self._connection is not None:
            self._connection.shutdown(timeout)
        else:
            self._stop()

    # -- the route's ------------------------------------------------------------------

    def hang_up(self) -> None:
        """``DELETE`` of the session's resource: like the client closing the connection."""
        if self._transport is not None:
            self._transport.hang_up()
        else:
            self._stop()

    async def run(self, release: Callable[[], None]) -> None:
        """Connect, run the session, close the peer connection, then ``release`` (the
        admission's hold)."""
        try:
            if await self._connected():
                await self._run_session()
        except Exception:
            self._log.exception("internal error")
        finally:
            if self._transport is not None:
                await self._transport.aclose()
            await self.pc.close()
            self._metrics.peers.dec()
            release()

    # -- steps ------------------------------------------------------------------------

    async def _connected(self) -> bool:
        """Whether the peer connected within the timeout (else it is counted, by stage)."""
        timeout = self._gw.settings.webrtc.connect_timeout
        try:
            async with asyncio.timeout(timeout):
                while not self._stopped:
                    state = self.pc.connectionState
                    if state in ("failed", "closed"):
                        break
                    if state == "connected" and self._channel is not None and self._track:
                        if self._channel.readyState == "open":
                            return True
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pass
        if self._stopped:
            self._log.info("closed before it connected")
            return False
        if self.pc.iceConnectionState not in ("connected", "completed"):
            stage = "ice"
        elif self.pc.connectionState != "connected":
            stage = "dtls"
        else:
            stage = "setup"
        self._metrics.peers_failed.labels(stage=stage).inc()
        self._log.warning(
            "peer did not connect within %g s (%s: ICE %s, connection %s); closed",
            timeout,
            stage,
            self.pc.iceConnectionState,
            self.pc.connectionState,
        )
        return False

    async def _run_session(self) -> None:
        assert self._channel is not None and self._track is not None
        gw, settings = self._gw, self._gw.settings
        transport = PeerTransport(
            self.pc,
            self._channel,
            self._track,
            media_timeout=settings.webrtc.media_timeout,
            log=self._log,
        )
        self._transport = transport
        session = WebRtcSession(
            session_id=self.session_id,
            limits=settings.limits,
            now=asyncio.get_running_loop().time(),
            query=self._query,
            require_config=settings.require_config,
            recording=settings.recording,
        )
        connection = ContractConnection(transport, session, gw, self._log, interface=INTERFACE)
        connection.owner = self._owner
        self._connection = connection
        self._log.info("opened over WebRTC")
        await connection.serve(session.open())

    # -- events -----------------------------------------------------------------------

    def _stop(self) -> None:
        self._stopped = True
        self._changed.set()

    def _on_datachannel(self, channel: RTCDataChannel) -> None:
        if self._channel is None:
            self._channel = channel
            channel.on("open", self._changed.set)
        else:
            self._log.warning("a second data channel %r is ignored", channel.label)
        self._changed.set()

    def _on_track(self, track: MediaStreamTrack) -> None:
        if track.kind == "audio" and self._track is None:
            self._track = track
        self._changed.set()
