"""A client that stops reading, and so stops answering pings, is closed by the server's
keepalive with 1011 and counted as the server's close, not as the client going away."""

from __future__ import annotations

import asyncio
import re
import socket

from .conftest import scaled
from .helpers import closed_port, gateway, upgrade


async def test_a_client_that_never_answers_pings_is_closed_1011() -> None:
    async with gateway(
        f"127.0.0.1:{closed_port()}", keepalive_seconds=0.3, close_timeout=0.5
    ) as gw:
        port = int(gw.base_url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as sock:
            # The handshake, then silence: the socket is never read again.
            sock.sendall(upgrade("/v1/audio/transcriptions/stream"))
            async with asyncio.timeout(scaled(20)):
                while True:
                    counted = re.search(
                        r'sessions_ended_total\{by="server",close_code="1011",'
                        r'interface="websocket"\} (\d+)',
                        gw.metrics.render().decode(),
                    )
                    if counted and float(counted.group(1)) >= 1:
                        break
                    await asyncio.sleep(0.1)
        assert gw.active_sessions == 0
