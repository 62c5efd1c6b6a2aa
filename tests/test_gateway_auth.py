"""Who may open a session: one credential per request, tokens revoked with their key, and a
back-off for an address that keeps guessing. The rules as pure functions, then over real
WebSockets against the gateway (no Riva needed: sessions end at or after ``session.begin``).
"""

from __future__ import annotations

import time

from websockets.asyncio.client import connect

from asr.contract import ErrorCode
from asr_server.auth import FailureBackoff, authenticate
from asr_server.tokens import issue_token

from .helpers import (
    API_KEY,
    SECRET,
    closed_port,
    first_message,
    gateway,
    get_token,
    receive_all,
    refused,
)

OTHER_KEY = "ak_live_0000aaaa1111bbbb2222"


def decide(**request: object) -> str | None:
    base: dict[str, object] = {"query_keys": [], "query_tokens": [], "authorization": None}
    return authenticate(
        (API_KEY,),
        SECRET.encode(),
        now=time.time(),
        **(base | request),  # type: ignore[arg-type]
    ).refusal


def test_one_credential_per_request() -> None:
    assert decide(query_keys=[API_KEY]) is None
    assert decide(authorization=f"Bearer {API_KEY}") is None
    assert decide() == "missing or invalid API key"
    # 250 guesses and the right key in one URL: refused without trying any of them.
    guesses = [f"guess-{i}" for i in range(250)] + [API_KEY]
    assert decide(query_keys=guesses) == "give one credential: one API key or one token"
    assert decide(query_keys=[API_KEY], authorization=f"Bearer {API_KEY}") is not None


def test_a_token_is_revoked_with_its_key() -> None:
    token, _ = issue_token(SECRET.encode(), api_key=OTHER_KEY, now=time.time(), ttl=60)
    both = authenticate(
        (API_KEY, OTHER_KEY),
        SECRET.encode(),
        query_keys=[],
        query_tokens=[token],
        authorization=None,
        now=time.time(),
    )
    assert both.allowed and both.token_id is not None
    assert decide(query_tokens=[token]) == "the token's API key is no longer accepted"


def test_backoff_after_repeated_failures() -> None:
    backoff = FailureBackoff(max_failures=3, window=10, penalty=30, max_addresses=2)
    for t in (0.0, 1.0):
        backoff.failed("10.0.0.1", t)
    assert backoff.blocked_for("10.0.0.1", 2.0) == 0
    backoff.failed("10.0.0.1", 2.0)  # the third within the window
    assert backoff.blocked_for("10.0.0.1", 2.0) == 30
    assert backoff.blocked_for("10.0.0.1", 31.5) == 0.5
    assert backoff.blocked_for("10.0.0.1", 33.0) == 0
    # Failures spread wider than the window never add up.
    for t in (100.0, 115.0, 130.0):
        backoff.failed("10.0.0.2", t)
    assert backoff.blocked_for("10.0.0.2", 130.0) == 0
    # A success forgets the address; memory holds at most max_addresses.
    backoff.succeeded("10.0.0.2")
    for address in ("a", "b", "c"):
        backoff.failed(address, 0.0)
    assert len(backoff._state) == 2


async def test_rules_hold_over_real_websockets() -> None:
    async with gateway(
        f"127.0.0.1:{closed_port()}", api_keys=(API_KEY, OTHER_KEY), token_secret=SECRET
    ) as gw:
        _, _, body = await get_token(gw.base_url, OTHER_KEY)
        token = body["token"]
        assert (await first_message(f"{gw.url}?token={token}"))["type"] == "session.begin"
        many = "&".join(f"api_key=guess{i}" for i in range(250))
        assert await refused(f"{gw.url}?{many}&api_key={API_KEY}", ErrorCode.UNAUTHORIZED) == (
            "give one credential: one API key or one token"
        )
    # The operator removes OTHER_KEY: its token stops working, though still unexpired.
    async with gateway(
        f"127.0.0.1:{closed_port()}", api_keys=(API_KEY,), token_secret=SECRET
    ) as gw:
        assert await refused(f"{gw.url}?token={token}", ErrorCode.UNAUTHORIZED) == (
            "the token's API key is no longer accepted"
        )


async def test_an_address_that_keeps_guessing_is_held_off() -> None:
    async with gateway(f"127.0.0.1:{closed_port()}", api_keys=(API_KEY,)) as gw:
        for i in range(10):
            async with connect(f"{gw.url}?api_key=guess{i}") as ws:
                messages = await receive_all(ws)
            assert messages[-1]["message"] == "missing or invalid API key"
        # Now even the right key is refused for a while, and so is a token request.
        message = await refused(f"{gw.url}?api_key={API_KEY}", ErrorCode.UNAUTHORIZED)
        assert message.startswith("too many failed attempts; try again in ")
        status, headers, _ = await get_token(gw.base_url, API_KEY)
        assert status == 429 and int(headers["Retry-After"]) > 0
