"""What a client can make ``asr serve`` hold is bounded: pongs it never reads, request
headers before the handshake, connections from one address. Each is provoked with raw
sockets against the server in its own process; its memory stays bounded and it keeps
serving.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import urllib.request
from collections.abc import AsyncIterator

from .conftest import scaled
from .helpers import exchange, serve, upgrade

STREAM = "/v1/audio/transcriptions/stream"
# A client-to-server ping with 125 bytes of payload, masked with a zero key (RFC 6455 5.3).
PING = bytes([0x89, 0x80 | 125]) + b"\x00" * 4 + b"p" * 125


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def healthy(port: int) -> bool:
    url = f"http://127.0.0.1:{port}/healthz"
    with urllib.request.urlopen(url, timeout=scaled(10)) as response:
        return bool(response.status == 200)


@contextlib.asynccontextmanager
async def server(**env: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, int]]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        proc, port = await serve("INFO")
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    try:
        yield proc, port
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(scaled(30)):
            await proc.communicate()


def ping_flood(port: int, pings: int) -> int:
    """Handshake, then ``pings`` pings without ever reading; the pings the server took."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(30))
    with sock:
        sock.sendall(upgrade(STREAM))
        answer = b""
        while b"\r\n\r\n" not in answer:  # the 101; nothing is read after it
            answer += sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 101"), answer
        sent = 0
        try:
            for _ in range(pings // 100):
                sock.sendall(PING * 100)
                sent += 100
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    return sent


async def test_unread_pongs_do_not_pile_up() -> None:
    async with server(ASR_SERVER_API_KEYS="") as (proc, port):
        before = rss_mb(proc.pid)
        # 200,000 pings: 26 MB of pongs the client never reads.
        taken = await asyncio.to_thread(ping_flood, port, 200_000)
        assert taken < 200_000, "the server kept answering a client that never reads"
        assert rss_mb(proc.pid) - before < 40
        assert await asyncio.to_thread(healthy, port)


async def test_request_headers_are_bounded_before_the_handshake() -> None:
    async with server() as (proc, port):
        before = rss_mb(proc.pid)
        padding = [f"X-Padding-{i}: {'a' * 4000}" for i in range(100)]  # 400 KB of headers
        for _ in range(20):
            answer = await asyncio.to_thread(exchange, port, upgrade(STREAM, *padding))
            assert b"101" not in answer
        assert rss_mb(proc.pid) - before < 40
        assert await asyncio.to_thread(healthy, port)


async def test_connections_per_address_are_capped() -> None:
    async with server(ASR_SERVER_CONNECTIONS__MAX_PER_ADDRESS="4") as (_, port):
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
        try:
            extra = socket.create_connection(("127.0.0.1", port), timeout=scaled(10))
            with extra:
                extra.sendall(upgrade(STREAM))
                try:
                    answer = extra.recv(1024)
                except ConnectionResetError:
                    answer = b""
                assert answer == b""  # dropped at once, nothing answered
        finally:
            for sock in held:
                sock.close()
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(healthy, port)  # room again once they closed
