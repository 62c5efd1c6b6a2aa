"""Optional OpenTelemetry tracing of sessions: a span per session, a child per Riva stream.

Off unless ``ASR_SERVER_TRACING=true`` and ``opentelemetry-api`` is installed; with
tracing off, or the package missing, every call here does nothing. Spans go to the tracer
provider the process configured (``opentelemetry-sdk`` with an exporter, or
``opentelemetry-instrument``); tests pass their own provider with an in-memory exporter.

Span ``asr.session`` (attributes ``asr.session_id``, ``asr.audio_seconds``,
``asr.close_code``) has one child ``riva.StreamingRecognize`` per gRPC stream (attribute
``asr.stream_index``) carrying events ``first_partial`` and ``final``; a backend failure is
recorded as an exception on the session span.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

__all__ = ["SessionTrace", "Tracing"]

logger = logging.getLogger("asr.server")


class SessionTrace:
    """The spans of one session (a no-op when ``tracer`` is ``None``)."""

    def __init__(self, tracer: Any, trace_api: Any, session_id: str) -> None:
        self._api = trace_api
        self._span: Any = None
        self._streams: dict[int, Any] = {}
        if tracer is not None:
            self._tracer = tracer
            self._span = tracer.start_span("asr.session", attributes={"asr.session_id": session_id})

    def stream_started(self, index: int) -> None:
        """A gRPC stream to Riva opened."""
        if self._span is None:
            return
        context = self._api.set_span_in_context(self._span)
        self._streams[index] = self._tracer.start_span(
            "riva.StreamingRecognize", context=context, attributes={"asr.stream_index": index}
        )

    def stream_event(self, index: int | None, name: str, **attributes: Any) -> None:
        """An event (``first_partial``, ``final``) on stream ``index`` (or the session)."""
        if self._span is None:
            return
        span = self._streams.get(index) if index is not None else None
        (span or self._span).add_event(name, attributes=attributes)

    def stream_ended(self, index: int | None) -> None:
        """A gRPC stream to Riva finished."""
        span = self._streams.pop(index, None) if index is not None else None
        if span is not None:
            span.end()

    def failed(self, error: BaseException) -> None:
        """The backend failed."""
        if self._span is not None:
            self._span.record_exception(error)

    def end(self, *, audio_seconds: float, close_code: int | None) -> None:
        """The session ended; open stream spans end with it."""
        if self._span is None:
            return
        for span in self._streams.values():
            span.end()
        self._streams.clear()
        self._span.set_attribute("asr.audio_seconds", round(audio_seconds, 3))
        if close_code is not None:
            self._span.set_attribute("asr.close_code", close_code)
        self._span.end()
        self._span = None


class Tracing:
    """Makes :class:`SessionTrace` objects.

    Args:
        enabled: Whether to trace at all.
        tracer_provider: An OpenTelemetry ``TracerProvider``; the global one when
            ``None``.
    """

    def __init__(self, enabled: bool, tracer_provider: Any = None) -> None:
        self._tracer: Any = None
        self._api: Any = None
        if not enabled:
            return
        try:
            self._api = importlib.import_module("opentelemetry.trace")
        except ImportError:
            logger.warning("tracing is on but opentelemetry-api is not installed; not tracing")
            return
        provider = tracer_provider or self._api.get_tracer_provider()
        self._tracer = provider.get_tracer("asr.server")

    @property
    def enabled(self) -> bool:
        """Whether sessions are traced."""
        return self._tracer is not None

    def session(self, session_id: str) -> SessionTrace:
        """The spans of a new session."""
        return SessionTrace(self._tracer, self._api, session_id)
