"""WebRTC's collectors, on the gateway's registry (:mod:`asr_server.metrics`).

============================================  ===============================================
``asr_gateway_webrtc_peers``                  peer connections open now (connecting or
                                              carrying a session)
``asr_gateway_webrtc_peers_failed_total       peers closed because they did not connect
{stage}``                                     within ``ASR_SERVER_WEBRTC__CONNECT_TIMEOUT``
                                              (or failed before): ``ice`` (no candidate pair
                                              worked), ``dtls`` (ICE did, the DTLS handshake
                                              did not), ``setup`` (connected, but no data
                                              channel or no audio track arrived)
============================================  ===============================================

Sessions over WebRTC are in the gateway's per-interface series with
``interface="webrtc"``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

from ..metrics import GatewayMetrics

__all__ = ["FAILURE_STAGES", "INTERFACE", "WebRtcMetrics"]

INTERFACE = "webrtc"
"""The ``interface`` label of sessions over WebRTC."""

FAILURE_STAGES = ("ice", "dtls", "setup")
"""Values of ``asr_gateway_webrtc_peers_failed_total``'s ``stage`` label."""


class WebRtcMetrics:
    """The WebRTC collectors of one gateway (its sessions are in the gateway's
    ``interface="webrtc"`` series).

    Args:
        metrics: The gateway's metrics, whose registry these join.
    """

    def __init__(self, metrics: GatewayMetrics) -> None:
        self.peers = Gauge(
            "asr_gateway_webrtc_peers",
            "WebRTC peer connections open now",
            registry=metrics.registry,
        )
        self.peers_failed = Counter(
            "asr_gateway_webrtc_peers_failed",
            "WebRTC peers closed because they did not connect in time, by stage",
            ["stage"],
            registry=metrics.registry,
        )
        for stage in FAILURE_STAGES:
            self.peers_failed.labels(stage=stage)
