"""The per-connection machinery of a WebSocket interface: reader, writer, outbox, close.

An interface (the own contract in :mod:`asr_server.ws_contract`; NVIDIA's realtime API
next) has a sans-I/O session that turns frames into messages to send; what it needs from
the socket is the same for all of them and lives here, written against :class:`Transport`:

- a **reader** task that puts client frames into the interface's inbox, at most
  ``read_ahead`` not yet processed: past that it stops reading, the ASGI server stops
  reading the socket, and a client that floods is slowed down by TCP, not buffered;
- a **writer** task that sends the :class:`Outbox`, bounded in bytes: a client that does
  not read fills it and :meth:`Channel.send` says so (the interface closes it). While
  nothing waits in the outbox and the socket takes a frame at once,
  :meth:`Channel.push` sends it from the caller's task: no hand-off to the writer for
  the common case, the same order;
- **close**: the messages queued first, then the close frame, each within
  ``close_timeout``; a client that takes neither is dropped (``abort``);
- **how it ended**: the close code and which side closed (:meth:`Transport.ended`).

:class:`AsgiTransport` is the :class:`Transport` of a Starlette ``WebSocket`` under the
gateway's uvicorn (see :mod:`asr_server.connection_guard` for what it adds to the scope).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from .connection_guard import TRANSPORT_EXTENSION, TransportControl

__all__ = [
    "AsgiTransport",
    "Channel",
    "ClientGone",
    "Ending",
    "Outbox",
    "Transport",
    "TransportClosed",
]


class TransportClosed(Exception):
    """The connection is closed: nothing more can be sent."""


@dataclass(frozen=True, slots=True)
class Ending:
    """How a connection ended.

    Attributes:
        code: The close code (1006 when the TCP connection dropped without one).
        by: ``"server"`` when the server's close came first (the application's, a
            keepalive timeout's 1011, a frame too large's 1009), else ``"client"``.
    """

    code: int
    by: Literal["server", "client"]


@dataclass(frozen=True, slots=True)
class ClientGone:
    """The reader's last input: the client closed or the connection dropped."""


class Transport(Protocol):
    """What :class:`Channel` needs of an accepted WebSocket."""

    async def receive(self) -> str | bytes | None:
        """The next client frame; ``None`` once the connection is closed."""
        ...

    async def send(self, text: str) -> None:
        """Send a text frame (waits while the socket's buffer is full).

        Raises:
            TransportClosed: The connection is closed.
        """
        ...

    async def close(self, code: int, reason: str) -> None:
        """Send the close frame (waits while the socket's buffer is full)."""
        ...

    def abort(self) -> None:
        """Drop the TCP connection now."""
        ...

    def writable(self) -> bool:
        """Whether :meth:`send` would take a frame now, without waiting."""
        ...

    def ended(self) -> Ending:
        """How the connection ended (after :meth:`receive` returned ``None``)."""
        ...


class AsgiTransport:
    """:class:`Transport` over a Starlette ``WebSocket`` served by the gateway's uvicorn."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        control = websocket.scope.get("extensions", {}).get(TRANSPORT_EXTENSION)
        self._control: TransportControl | None = control
        self._disconnect_code = 1006

    async def receive(self) -> str | bytes | None:
        if self.websocket.client_state is WebSocketState.DISCONNECTED:
            return None
        message = await self.websocket.receive()
        if message["type"] == "websocket.disconnect":
            self._disconnect_code = int(message.get("code", 1006))
            return None
        text = message.get("text")
        if text is not None:
            return str(text)
        return bytes(message.get("bytes") or b"")

    async def send(self, text: str) -> None:
        if self.websocket.application_state is not WebSocketState.CONNECTED:
            raise TransportClosed
        try:
            await self.websocket.send_text(text)
        except (WebSocketDisconnect, OSError) as exc:
            raise TransportClosed from exc

    async def close(self, code: int, reason: str) -> None:
        if self.websocket.application_state is not WebSocketState.CONNECTED:
            return
        with contextlib.suppress(WebSocketDisconnect, OSError):
            await self.websocket.close(code, reason)

    def abort(self) -> None:
        if self._control is not None:
            self._control.abort()

    def writable(self) -> bool:
        control = self._control
        return (
            control is not None
            and control.writable
            and self.websocket.application_state is WebSocketState.CONNECTED
        )

    def ended(self) -> Ending:
        control = self._control
        if control is not None and (code := control.closed_by_server) is not None:
            return Ending(code, "server")
        if control is not None and (code := control.close_received) is not None:
            return Ending(code, "client")
        return Ending(self._disconnect_code, "client")


class Outbox:
    """Messages waiting for a client, bounded in bytes: the writer task sends them."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.queued_bytes = 0
        self.queue: asyncio.Queue[str] = asyncio.Queue()

    def put(self, text: str, *, force: bool = False) -> bool:
        """Queue ``text``; ``False`` (not queued) when that would exceed the limit."""
        size = len(text)
        if not force and self.queued_bytes + size > self.limit:
            return False
        self.queued_bytes += size
        self.queue.put_nowait(text)
        return True

    def sent(self, text: str) -> None:
        self.queued_bytes -= len(text)
        self.queue.task_done()


class Channel:
    """One connection's reader and writer tasks around a :class:`Transport`.

    Args:
        transport: The accepted WebSocket.
        deliver: Called with each client frame read, then with :class:`ClientGone`.
        max_outbound_bytes: Bound of the :class:`Outbox`.
        close_timeout: Seconds the queued messages, then the close frame, may take.
        read_ahead: Frames read but not yet :meth:`processed` before reading stops.
    """

    def __init__(
        self,
        transport: Transport,
        deliver: Callable[[str | bytes | ClientGone], None],
        *,
        max_outbound_bytes: int,
        close_timeout: float,
        read_ahead: int = 64,
    ) -> None:
        self.transport = transport
        self._deliver = deliver
        self.outbox = Outbox(max_outbound_bytes)
        self.close_timeout = close_timeout
        self._read_ahead = read_ahead
        # Client frames read but not yet processed; the reader waits while there are too
        # many, except once the session is closing (then it reads and drops, so that the
        # client's close frame is not stuck behind unread audio). An Event set while there
        # is room, not a Condition: no lock to take twice per frame on the hot path.
        self._unprocessed = 0
        self._room = asyncio.Event()
        self._room.set()
        self.closing = False
        self._tasks: list[asyncio.Task[None]] = []
        self._writing = self._reading = False

    def start_writing(self) -> None:
        """Start the writer task (once; later calls do nothing)."""
        if not self._writing:
            self._writing = True
            self._tasks.append(asyncio.create_task(self._write()))

    def start_reading(self) -> None:
        """Start the reader task (once; later calls do nothing)."""
        if not self._reading:
            self._reading = True
            self._tasks.append(asyncio.create_task(self._read()))

    def send(self, text: str, *, force: bool = False) -> bool:
        """Queue ``text`` for the client; ``False`` when the outbox is full (not queued)."""
        return self.outbox.put(text, force=force)

    async def push(self, text: str) -> bool:
        """Send ``text`` now when nothing is queued or being sent and the socket takes it
        at once; else queue it as :meth:`send` does (``False``: the outbox is full)."""
        if self._writing and not self.outbox.queued_bytes and self.transport.writable():
            with contextlib.suppress(TransportClosed):
                await self.transport.send(text)
            return True
        return self.outbox.put(text)

    async def processed(self) -> None:
        """One frame :attr:`deliver` handed over was processed: the reader may go on."""
        self._unprocessed -= 1
        if self._unprocessed < self._read_ahead:
            self._room.set()

    async def close(self, code: int, reason: str) -> bool:
        """Send what is queued, then close; a client that does not take them within
        ``close_timeout`` (twice: the messages, the close frame) is dropped.

        Returns:
            Whether the queued messages were all taken in time.
        """
        self.closing = True
        self._room.set()
        drained = True
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.outbox.queue.join()
        except TimeoutError:
            drained = False
        try:
            async with asyncio.timeout(self.close_timeout):
                await self.transport.close(code, reason)
        except TimeoutError:
            self.transport.abort()
        return drained

    async def stop(self) -> None:
        """Cancel the tasks (the connection is over)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _write(self) -> None:
        outbox = self.outbox
        while True:
            text = await outbox.queue.get()
            try:
                await self.transport.send(text)
            except TransportClosed:
                # Nobody to send to: count everything as handled so close() does not wait.
                outbox.sent(text)
                while not outbox.queue.empty():
                    outbox.sent(outbox.queue.get_nowait())
                continue
            outbox.sent(text)

    async def _read(self) -> None:
        while (frame := await self.transport.receive()) is not None:
            await self._room.wait()  # returns at once while there is room
            if self.closing:
                continue
            self._unprocessed += 1
            if self._unprocessed >= self._read_ahead:
                self._room.clear()
            self._deliver(frame)
        self._deliver(ClientGone())
