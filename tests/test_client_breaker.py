"""An open circuit breaker finds out by itself that the server is back.

A call the open breaker refuses starts a health check; when the server says SERVING the
breaker lets the next call through as a trial, long before its reset timeout.
"""

from __future__ import annotations

import asyncio

import pytest

from asr import (
    BreakerSettings,
    CircuitOpenError,
    RetrySettings,
    RivaASRClient,
    UnavailableError,
)

from .conftest import scaled
from .scripted import Script, start_scripted


async def test_a_refused_call_starts_the_health_check_that_reopens_the_path() -> None:
    script = Script(steps=["unavailable", "unavailable", "ok"])
    server, port = await start_scripted(script)
    try:
        async with RivaASRClient(
            uri=f"127.0.0.1:{port}",
            retry=RetrySettings(attempts=1),
            breaker=BreakerSettings(fail_max=2, reset_timeout=300),
        ) as client:
            for _ in range(2):
                with pytest.raises(UnavailableError):
                    await client.list_models()
            with pytest.raises(CircuitOpenError):
                await client.list_models()  # refused: and a health check starts
            async with asyncio.timeout(scaled(10)):
                # pybreaker's state has no event to wait on: poll it.
                while client.breaker.current_state != "half-open":  # noqa: ASYNC110
                    await asyncio.sleep(0.02)
            assert await client.list_models()  # the trial call, long before 300 s
            assert client.breaker.current_state == "closed"
    finally:
        await server.stop(None)
    assert script.calls == 3
