"""How late the event loop runs: the health figure of an asyncio server.

A task sleeps ``interval_s`` over and over; how much later than asked it wakes up is time the
loop spent on something else or did not run at all: a long callback, a collector pause, a
host that gave the CPU to another tenant. A station's answer due during such a stall waits up
to that long too.
``csms serve`` and ``csms gateway`` export it as ``csms_event_loop_lag_seconds`` (one sample per
wake-up: a long stall counts once, so look at the top buckets and ``_sum``) and log a stall of
``warn_s`` or more (at most one line per ``warn_every_s``).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import structlog

log = structlog.get_logger("csms.looplag")

LAG_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
HELP = "How late the event loop woke a task that sleeps 0.25 s (long callbacks, collector pauses, CPU steal)"


async def watch(
    observe: Callable[[float], object], *, interval_s: float = 0.25, warn_s: float = 0.2,
    warn_every_s: float = 10.0,
) -> None:
    """Measure the loop's lag until cancelled; ``observe(seconds)`` gets every measurement."""
    loop = asyncio.get_running_loop()
    warned = -math.inf
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        now = loop.time()
        lag = max(0.0, now - due)
        observe(lag)
        if lag >= warn_s and now - warned >= warn_every_s:
            warned = now
            log.warning("event loop stalled", lag_ms=round(lag * 1000, 1))
