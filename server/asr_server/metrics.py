"""Prometheus metrics of one gateway, served at ``GET /metrics``.

Every collector is registered on the server's own
:class:`~prometheus_client.CollectorRegistry`, never the global one, so several servers
in one process (the tests) do not collide. The Riva client's metrics
(:class:`asr.metrics.RivaMetrics`) share the registry.

===================================================  =======================================
``asr_gateway_active_sessions{interface}``           sessions open now
``asr_gateway_active_streams``                       gRPC streams to Riva open now
``asr_gateway_max_sessions``                         the configured session limit
``asr_gateway_sessions_started_total{interface}``    sessions accepted (``session.begin``)
``asr_gateway_sessions_ended_total{interface,        sessions ended, by close code, and
close_code,by}``                                     whether the server or client closed
``asr_gateway_audio_seconds_total{interface}``       seconds of audio received
``asr_gateway_first_partial_latency_seconds          first partial of an utterance: from the
{interface}``                                        arrival of the audio it covers to sending
``asr_gateway_final_latency_seconds{interface}``     final: from the arrival of the audio at
                                                     its end to sending
``asr_gateway_queued_sessions{interface}``           sessions waiting in the admission queue
``asr_gateway_queue_wait_seconds{interface,          time a session waited in the queue, by
outcome}``                                           how it left it (:data:`QUEUE_OUTCOMES`)
===================================================  =======================================

``interface`` is the way the client came in: ``websocket`` (the project's own contract),
``realtime`` (NVIDIA NIM's realtime API), ``rest`` (file transcription) or ``webrtc`` (the
own contract over a WebRTC data channel, audio over Opus). Every
interface's series exist from the start, at zero, so rates over them are defined.
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

__all__ = ["CONTENT_TYPE", "GatewayMetrics", "INTERFACES", "InterfaceMetrics", "QUEUE_OUTCOMES"]

INTERFACES = ("websocket", "realtime", "rest", "webrtc")
"""The gateway's client interfaces, the values of the ``interface`` label."""

QUEUE_OUTCOMES = ("admitted", "timed_out", "left", "shutdown")
"""How a session leaves the admission queue: it got a place, waited
``queue_timeout_seconds`` in vain, its client went away, or the server shut down."""

QUEUE_WAIT_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0)
"""Seconds in the admission queue (``queue_timeout_seconds`` is 30 by default)."""

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
        by_interface = ["interface"]
        self.active_sessions = Gauge(
            "asr_gateway_active_sessions",
            "Sessions open now",
            by_interface,
            registry=self.registry,
        )
        self.active_streams = Gauge(
            "asr_gateway_active_streams", "gRPC streams to Riva open now", registry=self.registry
        )
        self.max_sessions = Gauge(
            "asr_gateway_max_sessions",
            "Sessions the gateway admits at once (ASR_SERVER_LIMITS__MAX_SESSIONS)",
            registry=self.registry,
        )
        self.sessions_started = Counter(
            "asr_gateway_sessions_started",
            "Sessions accepted",
            by_interface,
            registry=self.registry,
        )
        self.sessions_ended = Counter(
            "asr_gateway_sessions_ended",
            "Sessions ended, by close code and by which side closed",
            ["interface", "close_code", "by"],
            registry=self.registry,
        )
        self.audio_seconds = Counter(
            "asr_gateway_audio_seconds",
            "Seconds of audio received from clients",
            by_interface,
            registry=self.registry,
        )
        self.first_partial_latency = Histogram(
            "asr_gateway_first_partial_latency_seconds",
            "First partial of an utterance: arrival of the audio it covers to sending it",
            by_interface,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.final_latency = Histogram(
            "asr_gateway_final_latency_seconds",
            "Final: arrival of the audio at its end to sending it",
            by_interface,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.queued_sessions = Gauge(
            "asr_gateway_queued_sessions",
            "Sessions waiting in the admission queue for a place",
            by_interface,
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "asr_gateway_queue_wait_seconds",
            "Time a session waited in the admission queue, by how it left it",
            ["interface", "outcome"],
            buckets=QUEUE_WAIT_BUCKETS,
            registry=self.registry,
        )
        self.interfaces = {name: InterfaceMetrics(self, name) for name in INTERFACES}

    def interface(self, name: str) -> InterfaceMetrics:
        """The collectors of one interface (a name of :data:`INTERFACES`)."""
        return self.interfaces[name]

    def render(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


class InterfaceMetrics:
    """One interface's children of the gateway's labelled collectors."""

    def __init__(self, metrics: GatewayMetrics, name: str) -> None:
        self.name = name
        self._sessions_ended = metrics.sessions_ended
        self.active_sessions = metrics.active_sessions.labels(interface=name)
        self.sessions_started = metrics.sessions_started.labels(interface=name)
        self.audio_seconds = metrics.audio_seconds.labels(interface=name)
        self.first_partial_latency = metrics.first_partial_latency.labels(interface=name)
        self.final_latency = metrics.final_latency.labels(interface=name)
        self.queued_sessions = metrics.queued_sessions.labels(interface=name)
        self.queue_wait = {
            outcome: metrics.queue_wait.labels(interface=name, outcome=outcome)
            for outcome in QUEUE_OUTCOMES
        }

    def session_ended(self, close_code: int | str, by: str) -> None:
        """Count a session that ended with ``close_code``, closed by ``by`` (server/client)."""
        self._sessions_ended.labels(interface=self.name, close_code=str(close_code), by=by).inc()
