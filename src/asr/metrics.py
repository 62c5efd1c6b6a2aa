"""Prometheus metrics of the calls a :class:`~asr.client.RivaASRClient` makes to Riva.

A client records nothing unless it is given a :class:`RivaMetrics` (which needs
``prometheus-client``, in the ``server`` extra). Each
:class:`RivaMetrics` registers its collectors on the registry it is given, so a process
running several servers (the tests do) gives each its own
:class:`prometheus_client.CollectorRegistry` instead of colliding in the global one.

========================================  ===========================================
``asr_riva_call_seconds{method,code}``    unary calls: until the answer; streaming
                                          calls: until the first response (or failure)
``asr_riva_errors_total{method,code}``    failed calls by gRPC status code
``asr_riva_retries_total{method}``        attempts repeated after a transient failure
``asr_riva_breaker_state{endpoint}``      0 closed, 1 half-open, 2 open
``asr_riva_breaker_opened_total``         times the breaker opened
========================================  ===========================================
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pybreaker

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["BREAKER_STATES", "LATENCY_BUCKETS", "RivaMetrics"]

BREAKER_STATES = {"closed": 0, "half-open": 1, "open": 2}
"""Values of ``asr_riva_breaker_state``."""

LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.3, 0.5, 0.8, 1.0, 2.5, 5.0, 10.0, 30.0)
"""Histogram buckets in seconds, from a fast unary call to a slow first result; 0.3 and
0.8 are the first-partial and final SLOs (deploy/monitoring), so their p95s are exact."""


class RivaMetrics:
    """The client-side collectors, registered on ``registry``.

    Args:
        registry: Where the collectors are registered (one registry per server).
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        # Imported here: the client imports this module, and prometheus-client is an extra
        # (``asr[server]``) that only a process recording metrics needs.
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.call_seconds = Histogram(
            "asr_riva_call_seconds",
            "Riva call latency: unary calls until the answer, streams until the first response",
            ["method", "code"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.errors = Counter(
            "asr_riva_errors",
            "Failed Riva calls by gRPC status code",
            ["method", "code"],
            registry=registry,
        )
        self.retries = Counter(
            "asr_riva_retries",
            "Riva call attempts repeated after a transient failure",
            ["method"],
            registry=registry,
        )
        self.breaker_state = Gauge(
            "asr_riva_breaker_state",
            "Circuit breaker state per endpoint: 0 closed, 1 half-open, 2 open",
            ["endpoint"],
            registry=registry,
        )
        self.breaker_opened = Counter(
            "asr_riva_breaker_opened",
            "Times the circuit breaker opened",
            ["endpoint"],
            registry=registry,
        )

    def call(self, method: str, seconds: float, code: str) -> None:
        """A call ended (or, for a stream, answered first) with ``code`` (``OK`` or a
        ``grpc.StatusCode`` name) after ``seconds``."""
        self.call_seconds.labels(method=method, code=code).observe(seconds)
        if code != "OK":
            self.errors.labels(method=method, code=code).inc()

    def retry(self, method: str) -> None:
        """A call failed transiently and is attempted again."""
        self.retries.labels(method=method).inc()

    def watch(self, breaker: pybreaker.CircuitBreaker, endpoint: str) -> None:
        """Follow ``breaker``'s state in ``asr_riva_breaker_state{endpoint}``."""
        self.breaker_state.labels(endpoint=endpoint).set(
            BREAKER_STATES.get(breaker.current_state, 0)
        )
        breaker.add_listener(_BreakerListener(self, endpoint))


class _BreakerListener(pybreaker.CircuitBreakerListener):
    def __init__(self, metrics: RivaMetrics, endpoint: str) -> None:
        self._metrics = metrics
        self._endpoint = endpoint

    def state_change(self, cb: Any, old_state: Any, new_state: Any) -> None:
        name = getattr(new_state, "name", str(new_state))
        self._metrics.breaker_state.labels(endpoint=self._endpoint).set(BREAKER_STATES.get(name, 0))
        if name == "open":
            self._metrics.breaker_opened.labels(endpoint=self._endpoint).inc()
