"""The messages between :class:`~asr.dynamo.client.DynamoASRClient` and the ASR worker.

Dynamo's Python request plane carries one request and a stream of responses per call
(``Client.generate`` / ``round_robin`` / ``direct``). Its bidirectional endpoints
(``Endpoint.serve_bidirectional_endpoint``) serve only Dynamo's own Rust frontend: a Python
client cannot call them (ai-dynamo-runtime 1.6.1 raises ``TypeError: unsupported type
async_generator`` for an async iterator as request). So one recognition stream is several
calls, all to the same instance (``Client.direct``), on one endpoint::

    open   {"op": "open", "session": id, "config": <StreamingRecognizeRequest>}
           -> {"opened": True}, {"response": <StreamingRecognizeResponse>}..., {"end": True}
    audio  {"op": "audio", "session": id, "seq": n, "request": <StreamingRecognizeRequest>}
           -> {"ack": n}
    close  {"op": "close", "session": id}             -> {"ack": n}   (half-close)
    load   {"op": "load"}                             -> {"load": {...}} (WorkerLoad)

Any call may answer ``{"error": {"code": "<grpc.StatusCode name>", "details": "..."}}``
instead, and an ``open`` stream may end with one. The payloads are the serialised Riva
protos (Dynamo's msgpack frames carry ``bytes`` as they are), so the worker runs the
embedded servicer's session unchanged and the client reads events with :mod:`asr.protocol`,
exactly as over gRPC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import grpc

__all__ = [
    "DEFAULT_ENDPOINT",
    "WireStatus",
    "WorkerLoad",
    "audio_request",
    "close_request",
    "error_frame",
    "load_request",
    "open_request",
    "runtime_status",
]

DEFAULT_ENDPOINT = "asr.recognizer.stream"
"""``namespace.component.endpoint`` the worker serves and the client calls by default."""

OPEN, AUDIO, CLOSE, LOAD = "open", "audio", "close", "load"

Frame = dict[str, Any]


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What a worker reports of itself (the ``load`` call).

    Attributes:
        active_streams: Sessions open on the worker now.
        max_streams: Sessions it accepts at once; the next ``open`` gets RESOURCE_EXHAUSTED.
        serving: False while the worker drains: it takes no new sessions.
        queued_decodes: Decodes waiting for the worker's decode pool.
    """

    active_streams: int
    max_streams: int
    serving: bool = True
    queued_decodes: int = 0

    @property
    def utilisation(self) -> float:
        return self.active_streams / max(self.max_streams, 1)

    def to_frame(self) -> Frame:
        return {"load": asdict(self)}

    @classmethod
    def from_frame(cls, frame: Frame) -> WorkerLoad:
        body = frame["load"]
        return cls(
            active_streams=int(body["active_streams"]),
            max_streams=int(body["max_streams"]),
            serving=bool(body.get("serving", True)),
            queued_decodes=int(body.get("queued_decodes", 0)),
        )


def open_request(session: str, config: bytes) -> Frame:
    return {"op": OPEN, "session": session, "config": config}


def audio_request(session: str, seq: int, request: bytes) -> Frame:
    return {"op": AUDIO, "session": session, "seq": seq, "request": request}


def close_request(session: str) -> Frame:
    return {"op": CLOSE, "session": session}


def load_request() -> Frame:
    return {"op": LOAD}


def error_frame(code: grpc.StatusCode, details: str) -> Frame:
    return {"error": {"code": code.name, "details": details}}


class WireStatus(grpc.RpcError):  # type: ignore[misc]  # grpc ships no type hints
    """A status carried in an ``error`` frame or read from a Dynamo runtime error, shaped
    like a grpc error so that :func:`asr.errors.from_grpc_error` stays the one place where
    status codes become exceptions."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self._code = code
        self._details = details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    @classmethod
    def from_frame(cls, frame: Frame) -> WireStatus:
        body = frame.get("error") or {}
        name = str(body.get("code", "UNKNOWN"))
        code = grpc.StatusCode.__members__.get(name, grpc.StatusCode.UNKNOWN)
        return cls(code, str(body.get("details", "worker error")))


# The runtime's errors are bare Exception / ValueError with a message that starts with
# its own error kind ("Unavailable: TCP connection to ... failed", "Unavailable: Stream
# ended before generation completed" when the worker died mid-stream).
_RUNTIME_KINDS = (
    ("unavailable", grpc.StatusCode.UNAVAILABLE),
    ("server overloaded", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("worker at capacity", grpc.StatusCode.RESOURCE_EXHAUSTED),
    ("no instances", grpc.StatusCode.UNAVAILABLE),
    ("instance not found", grpc.StatusCode.UNAVAILABLE),
    ("cannot connect", grpc.StatusCode.UNAVAILABLE),
    ("connection", grpc.StatusCode.UNAVAILABLE),
)


def runtime_status(exc: Exception) -> WireStatus:
    """The status a Dynamo runtime error stands for (UNKNOWN when it says nothing known)."""
    text = str(exc) or type(exc).__name__
    lowered = text.lower()
    for kind, code in _RUNTIME_KINDS:
        if lowered.startswith(kind) or f"{kind}:" in lowered:
            return WireStatus(code, f"dynamo: {text}")
    return WireStatus(grpc.StatusCode.UNKNOWN, f"dynamo: {text}")
