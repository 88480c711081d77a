"""Process runtime helpers (``csms.runtime``)."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from csms import runtime


def test_run_returns_the_exit_status_and_zero_for_none() -> None:
    async def status(code: int | None) -> int | None:
        await asyncio.sleep(0)
        return code

    assert runtime.run(status(3)) == 3
    assert runtime.run(status(None)) == 0


def test_sigterm_sets_the_stop_event() -> None:
    async def main() -> int:
        stop = runtime.stop_on_signals()
        asyncio.get_running_loop().call_soon(os.kill, os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(stop.wait(), 5)
        return 0

    assert runtime.run(main()) == 0


async def test_wait_stopped_ends_when_stopped_or_when_the_duration_passed() -> None:
    stop = asyncio.Event()
    start = time.monotonic()
    await runtime.wait_stopped(stop, 0.05)
    assert time.monotonic() - start >= 0.05
    asyncio.get_running_loop().call_later(0.01, stop.set)
    await asyncio.wait_for(runtime.wait_stopped(stop, None), 5)
    assert stop.is_set()
