"""Process runtime: the event loop a command runs on and the signals that stop it.

Used by the commands (``csms serve``, ``csms demo``, ``csms gateway``); it imports nothing
of the CSMS, so every process entry point can use it without reaching the composition root.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from typing import Any


def run(main: Coroutine[Any, Any, int | None]) -> int:
    """Run ``main`` to completion on uvloop when installed (else asyncio); its exit status."""
    try:
        import uvloop
    except ImportError:
        return int(asyncio.run(main) or 0)
    return int(uvloop.run(main) or 0)


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT (graceful shutdown of ``serve``, ``demo`` and ``gateway``)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def wait_stopped(stop: asyncio.Event, duration_s: float | None) -> None:
    """Until ``stop`` is set or ``duration_s`` passed (None: no time limit)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), duration_s)
