"""Prometheus metrics of one gateway, served at ``GET /metrics``.

Every collector is registered on the server's own
:class:`~prometheus_client.CollectorRegistry`, never the global one, so several servers
in one process (the tests) do not collide. The Riva client's metrics
(:class:`asr.metrics.RivaMetrics`) share the registry.

===================================================  =======================================
``asr_gateway_active_sessions``                      sessions open now
``asr_gateway_active_streams``                       gRPC streams to Riva open now
``asr_gateway_sessions_started_total``               sessions accepted (``session.begin``)
``asr_gateway_sessions_ended_total{close_code,by}``  sessions ended, by close code, and
                                                     whether the server or client closed
``asr_gateway_audio_seconds_total``                  seconds of audio received
``asr_gateway_first_partial_latency_seconds``        first partial of an utterance: from the
                                                     arrival of the audio it covers to sending
``asr_gateway_final_latency_seconds``                final: from the arrival of the audio at
                                                     its end to sending
===================================================  =======================================
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from asr.metrics import LATENCY_BUCKETS, RivaMetrics

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Content type of the text exposition format."""


class GatewayMetrics:
    """The gateway's collectors and the Riva client's, on one registry.

    Args:
        registry: Where they are registered; a new one when omitted.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.riva = RivaMetrics(self.registry)
        self.active_sessions = Gauge(
            "asr_gateway_active_sessions", "WebSocket sessions open now", registry=self.registry
        )
        self.active_streams = Gauge(
            "asr_gateway_active_streams", "gRPC streams to Riva open now", registry=self.registry
        )
        self.sessions_started = Counter(
            "asr_gateway_sessions_started",
            "WebSocket sessions accepted",
            registry=self.registry,
        )
        self.sessions_ended = Counter(
            "asr_gateway_sessions_ended",
            "WebSocket sessions ended, by close code and by which side closed",
            ["close_code", "by"],
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "asr_gateway_audio_seconds",
            "Seconds of audio received from clients",
            registry=self.registry,
        )
        self.first_partial_latency = Histogram(
            "asr_gateway_first_partial_latency_seconds",
            "First partial of an utterance: arrival of the audio it covers to sending it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.final_latency = Histogram(
            "asr_gateway_final_latency_seconds",
            "Final: arrival of the audio at its end to sending it",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
