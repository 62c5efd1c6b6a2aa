"""Per-connection bounds that uvicorn leaves open, as its two protocol classes subclassed.

uvicorn bounds what it can by its own settings, and :class:`~asr_server.app.GatewayServer`
sets them:
``h11_max_incomplete_event_size`` (bytes of request line and headers before the request
is answered: 400 past it), ``ws_max_size`` (frames), ``limit_concurrency`` (503 for HTTP
past it) and the keepalive pings. Three things a client controls it does not bound:

- **Connections per address**, and connections at all: ``limit_concurrency`` answers HTTP
  with 503 but still takes every TCP connection and every WebSocket upgrade.
  :class:`ConnectionCounter` counts them; one past a bound is dropped at once
  (``transport.abort()``, nothing is read or buffered for it).
- **Control frames.** Every ping is answered with a pong written straight to the
  transport, past the flow control the ASGI ``send`` applies: a client that pings without
  reading makes the server's write buffer grow by each pong.
- **The closing handshake.** uvicorn waits ten seconds for the client's close frame, then
  *closes* the transport, which waits for the unsent bytes to flush: a client that does
  not read holds the connection. Here it waits ``close_timeout`` and aborts.

The WebSocket protocol also puts a :class:`TransportControl` in the ASGI scope
(``scope["extensions"]["asr.transport"]``): the application reads who closed the
connection with which code, and can abort a connection that does not take its close.
Besides, two client errors that uvicorn logs as a warning or a traceback become one INFO
line: a request h11 cannot parse ("opening handshake failed: REASON", as the websockets
server said) and a text frame that is not UTF-8 (closed 1007).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from typing import Any

import h11
from pydantic import BaseModel, ConfigDict, Field
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.utils import ClientDisconnected
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from asr.logs import escape_controls, redact

__all__ = [
    "ConnectionBounds",
    "ConnectionCounter",
    "TRANSPORT_EXTENSION",
    "TransportControl",
    "guarded_protocols",
]

logger = logging.getLogger("asr.server")

TRANSPORT_EXTENSION = "asr.transport"
"""Key of the :class:`TransportControl` in a WebSocket scope's ``extensions``."""

_REASON_CHARS = 200


class ConnectionBounds(BaseModel):
    """What one server lets connections hold (``ASR_SERVER_CONNECTIONS__*``).

    Attributes:
        max_connections: Open TCP connections, all clients together.
        max_per_address: Open TCP connections from one IP address.
        max_request_bytes: Bytes a client may send before its request is answered
            (request line and headers).
        max_write_buffer_bytes: Bytes waiting in a connection's transport to be sent;
            past it the client is not reading (the outbox bound covers messages, this one
            the pongs that bypass it).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_connections: int = Field(default=1024, ge=1)
    max_per_address: int = Field(default=64, ge=1)
    max_request_bytes: int = Field(default=32 * 1024, ge=4096)
    max_write_buffer_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)


class ConnectionCounter:
    """Open connections, in all and per address."""

    def __init__(self, bounds: ConnectionBounds) -> None:
        self.bounds = bounds
        self.total = 0
        self._per_address: Counter[str] = Counter()

    def admit(self, address: str) -> str | None:
        """Count a new connection from ``address``; why it must be dropped, or ``None``."""
        if self.total >= self.bounds.max_connections:
            return f"{self.total} connections open"
        if self._per_address[address] >= self.bounds.max_per_address:
            return f"{self._per_address[address]} connections open from {address}"
        self.total += 1
        self._per_address[address] += 1
        return None

    def release(self, address: str) -> None:
        """A connection admitted from ``address`` closed."""
        self.total -= 1
        self._per_address[address] -= 1
        if self._per_address[address] <= 0:
            del self._per_address[address]


class TransportControl:
    """What the application may know and do about its WebSocket's TCP connection."""

    def __init__(self, protocol: WebSocketsSansIOProtocol) -> None:
        self._protocol = protocol

    @property
    def closed_by_server(self) -> int | None:
        """The close code the server sent first (the application's close, a keepalive
        timeout's 1011, a frame too large's 1009); ``None`` if it only echoed the
        client's or sent none."""
        conn = self._protocol.conn
        if conn.close_sent is None or conn.close_rcvd_then_sent:
            return None
        return conn.close_sent.code

    @property
    def close_received(self) -> int | None:
        """The close code the client sent, if any."""
        received = self._protocol.conn.close_rcvd
        return received.code if received is not None else None

    @property
    def writable(self) -> bool:
        """Whether a frame sent now goes to the socket without waiting (the transport's
        buffer is under its high-water mark and the connection is not closing)."""
        protocol = self._protocol
        return protocol.writable.is_set() and not protocol.transport.is_closing()

    def abort(self) -> None:
        """Drop the TCP connection now, whatever is unsent."""
        self._protocol.transport.abort()


def _address(transport: asyncio.BaseTransport) -> str:
    peer = transport.get_extra_info("peername")
    return str(peer[0]) if peer else "unknown"


class _RecordingConnection(h11.Connection):
    """h11's connection, keeping the parse error it raises for the log line."""

    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> Any:
        try:
            return super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise


def guarded_protocols(
    counter: ConnectionCounter, *, close_timeout: float
) -> tuple[type[H11Protocol], type[WebSocketsSansIOProtocol]]:
    """uvicorn's HTTP and WebSocket protocol classes, bounded by ``counter`` (pass them as
    ``Config(http=..., ws=...)``); ``close_timeout`` bounds the closing handshake."""
    bounds = counter.bounds

    class GuardedWebSocket(WebSocketsSansIOProtocol):
        owned_address: str | None = None

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            self.close_timeout = close_timeout
            self.control = TransportControl(self)

        def connection_lost(self, exc: Exception | None) -> None:
            if self.owned_address is not None:
                counter.release(self.owned_address)
                self.owned_address = None
            super().connection_lost(exc)

        def handle_connect(self, event: Any) -> None:
            super().handle_connect(event)
            if self.handshake_initiated and not self.handshake_complete:
                extensions: dict[str, Any] = self.scope["extensions"]
                extensions[TRANSPORT_EXTENSION] = self.control

        def handle_ping(self) -> None:
            super().handle_ping()
            buffered = self.transport.get_write_buffer_size()
            if buffered > bounds.max_write_buffer_bytes:
                logger.info(
                    "connection dropped: %d bytes unsent, the client is not reading", buffered
                )
                self.transport.abort()

        def send_receive_event_to_app(self) -> None:
            if self.curr_msg_data_type == "text" and not self.close_sent:
                try:
                    b"".join(self.frames).decode()
                except UnicodeDecodeError:
                    # RFC 6455 8.1: invalid UTF-8 in a text message fails the connection.
                    self.frames = []
                    self.conn.fail(1007, "invalid UTF-8")
                    self.handle_parser_exception()
                    return
            super().send_receive_event_to_app()

        async def send(self, message: Any) -> None:
            if self.close_sent and self.handshake_complete and self.initial_response is None:
                # The server already closed (keepalive timeout, a frame too large): the
                # application learns it as a disconnect, not uvicorn's RuntimeError.
                raise ClientDisconnected()
            await super().send(message)
            if message["type"] == "websocket.close" and self.close_timer is not None:
                self.close_timer.cancel()
                self.close_timer = self.loop.call_later(self.close_timeout, self.transport.abort)

    class GuardedHTTP(H11Protocol):
        owned_address: str | None = None

        def __init__(
            self,
            config: Config,
            server_state: ServerState,
            app_state: dict[str, Any],
            _loop: asyncio.AbstractEventLoop | None = None,
        ) -> None:
            super().__init__(config, server_state, app_state, _loop)
            limit = config.h11_max_incomplete_event_size or bounds.max_request_bytes
            self.conn = _RecordingConnection(h11.SERVER, limit)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            address = _address(transport)
            refusal = counter.admit(address)
            if refusal is not None:
                logger.info("connection dropped: %s", refusal)
                transport.abort()
                return
            self.owned_address = address

        def connection_lost(self, exc: Exception | None) -> None:
            if self.owned_address is not None:
                counter.release(self.owned_address)
                self.owned_address = None
            super().connection_lost(exc)

        def handle_websocket_upgrade(self, event: h11.Request) -> None:
            address, self.owned_address = self.owned_address, None
            super().handle_websocket_upgrade(event)
            protocol = self.transport.get_protocol()
            if isinstance(protocol, GuardedWebSocket):
                protocol.owned_address = address  # released when that connection is lost
            elif address is not None:
                counter.release(address)

        def send_400_response(self, msg: str) -> None:
            error = self.conn.error if isinstance(self.conn, _RecordingConnection) else None
            reason = escape_controls(redact(str(error) if error is not None else msg))
            if len(reason) > _REASON_CHARS:
                reason = reason[:_REASON_CHARS] + "..."
            logger.info("opening handshake failed: %s", reason)
            super().send_400_response(msg)

    return GuardedHTTP, GuardedWebSocket
