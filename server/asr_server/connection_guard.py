"""Per-connection memory bounds that the websockets library leaves open.

websockets bounds frame sizes and the messages it queues, but three things a client controls
cost the server memory without limit:

- **Connections.** Each costs buffers and a task; nothing caps how many one address opens.
- **Request headers.** Up to 128 lines of 8 KiB each are read before the handshake can be
  refused: about 1 MiB per connection, unauthenticated.
- **Control frames.** Every ping is answered with a pong written straight to the transport,
  past the flow control that ``send()`` applies: a client that pings without reading makes
  the server's write buffer grow by each pong.

:func:`guarded_connection` makes a ``ServerConnection`` class that drops a connection
(``transport.abort()``, so nothing more is buffered for it) as soon as it crosses one of
these bounds; :class:`ConnectionCounter` is the bookkeeping behind the first, without I/O.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from pydantic import BaseModel, ConfigDict, Field
from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

__all__ = ["ConnectionBounds", "ConnectionCounter", "guarded_connection"]

logger = logging.getLogger("asr.server")


class ConnectionBounds(BaseModel):
    """What one server lets connections hold (``ASR_SERVER_CONNECTIONS__*``).

    Attributes:
        max_connections: Open TCP connections, all clients together.
        max_per_address: Open TCP connections from one IP address.
        max_request_bytes: Bytes a client may send before its handshake is answered
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


def guarded_connection(counter: ConnectionCounter) -> type[ServerConnection]:
    """A ``ServerConnection`` class enforcing ``counter``'s bounds (``create_connection=``)."""
    bounds = counter.bounds

    class GuardedConnection(ServerConnection):
        _address: str | None = None
        _request_bytes = 0

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if peer else "unknown"
            refusal = counter.admit(address)
            if refusal is not None:
                logger.info("connection dropped: %s", refusal)
                self.transport.abort()
                return
            self._address = address

        def connection_lost(self, exc: Exception | None) -> None:
            if self._address is not None:
                counter.release(self._address)
                self._address = None
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self.protocol.state is State.CONNECTING:
                self._request_bytes += len(data)
                if self._request_bytes > bounds.max_request_bytes:
                    logger.info(
                        "connection dropped: request headers over %d bytes",
                        bounds.max_request_bytes,
                    )
                    self.transport.abort()
                    return
            super().data_received(data)

        def send_data(self) -> None:
            super().send_data()
            if self.transport.get_write_buffer_size() > bounds.max_write_buffer_bytes:
                logger.info(
                    "connection dropped: %d bytes unsent, the client is not reading",
                    self.transport.get_write_buffer_size(),
                )
                self.transport.abort()

    return GuardedConnection
