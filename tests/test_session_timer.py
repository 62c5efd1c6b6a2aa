"""The session timer on a real event loop: one expiry per deadline that passes, at the
deadline as it stands when it passes, and none for a deadline that moved on."""

from __future__ import annotations

import asyncio

from asr_server.session_timer import Expired, SessionTimer


class _Deadline:
    """A session's deadline that the test moves."""

    def __init__(self, at: float | None) -> None:
        self.at = at

    def __call__(self) -> float | None:
        return self.at


def _timer(
    at: float,
) -> tuple[asyncio.AbstractEventLoop, asyncio.Queue[Expired], _Deadline, SessionTimer]:
    """A timer whose expiries go into an inbox, its deadline first at ``at``."""
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Expired] = asyncio.Queue()
    deadline = _Deadline(at)
    return loop, inbox, deadline, SessionTimer(loop, deadline, inbox.put_nowait)


async def test_a_deadline_moved_later_expires_once_at_its_last_value() -> None:
    loop, inbox, deadline, timer = _timer(asyncio.get_running_loop().time() + 0.02)
    timer.arm()
    deadline.at = loop.time() + 0.06  # an input moved it; the timer stays armed
    timer.arm()
    expiry = await asyncio.wait_for(inbox.get(), 10)
    assert expiry.at == deadline.at
    assert loop.time() >= deadline.at - 0.01
    assert timer.passed(expiry)
    assert inbox.empty()
    timer.cancel()


async def test_an_expiry_overtaken_by_a_later_deadline_does_not_hold() -> None:
    loop, inbox, deadline, timer = _timer(asyncio.get_running_loop().time())
    timer.arm()
    expiry = await asyncio.wait_for(inbox.get(), 10)
    timer.arm()  # queued already: no second expiry for the same deadline
    deadline.at = loop.time() + 3600  # inputs before the expiry moved the deadline
    assert not timer.passed(expiry)
    timer.arm()
    assert inbox.empty()
    timer.cancel()


async def test_a_deadline_moved_earlier_fires_at_the_earlier_one() -> None:
    loop, inbox, deadline, timer = _timer(asyncio.get_running_loop().time() + 3600)
    timer.arm()
    deadline.at = loop.time() + 0.01
    timer.arm()
    expiry = await asyncio.wait_for(inbox.get(), 10)
    assert expiry.at == deadline.at
    assert timer.passed(expiry)
    timer.cancel()


async def test_no_deadline_no_expiry() -> None:
    loop, inbox, deadline, timer = _timer(asyncio.get_running_loop().time() + 0.01)
    timer.arm()
    deadline.at = None  # the session closed
    await asyncio.sleep(0.05)
    assert inbox.empty()
    timer.cancel()
