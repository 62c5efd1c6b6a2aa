"""WebRTC ingest beside the WebSocket: the same contract, audio on an Opus track.

A client posts an SDP offer of one audio track and one data channel to
``POST /v1/webrtc/offer`` (:mod:`.routes`); the gateway answers, and once ICE and DTLS
complete (:mod:`.peer`, within ``ASR_SERVER_WEBRTC__CONNECT_TIMEOUT``) the session runs
as over the WebSocket: :class:`~asr_server.ws_contract.ContractConnection` drives the one
:class:`~asr_server.protocol.Session` protocol over a :class:`.transport.PeerTransport`.
The track's Opus, decoded by aiortc, becomes 16 kHz PCM16 (:mod:`.audio`) and enters the
session as the WebSocket's binary frames do; the data channel carries the contract's JSON
messages unchanged, both ways. :mod:`.metrics` counts peers and those that never connect.

::

    app.include_router(webrtc.router_for(gateway))
"""

from __future__ import annotations

from .routes import OFFER_PATH, SESSION_PATH, router_for

__all__ = ["OFFER_PATH", "SESSION_PATH", "router_for"]
