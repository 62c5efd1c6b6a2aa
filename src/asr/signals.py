"""Stopping a server process on SIGINT or SIGTERM (Ctrl-C, ``docker stop``, Kubernetes)."""

from __future__ import annotations

import asyncio
import contextlib
import signal

__all__ = ["stop_event"]


def stop_event() -> asyncio.Event:
    """An event set when the process receives SIGINT or SIGTERM.

    Call it from the running loop's thread. Where signal handlers cannot be installed (a
    loop outside the main thread, Windows) the event is never set by a signal; the caller's
    other ways of stopping still work.
    """
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    return stop
