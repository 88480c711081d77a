"""The event loop's lag (``csms.looplag``): a real loop, held by a blocking callback, must show
as lag, in the log and on a running CSMS's /metrics."""

from __future__ import annotations

import asyncio
import time

import httpx
import structlog

from csms import looplag
from csms.app import CsmsApp


async def test_a_held_loop_shows_as_lag_and_is_logged_once() -> None:
    seen: list[float] = []
    with structlog.testing.capture_logs() as logs:
        task = asyncio.create_task(looplag.watch(seen.append, interval_s=0.05, warn_s=0.3, warn_every_s=60))
        loop = asyncio.get_running_loop()
        await asyncio.sleep(0.12)
        loop.call_soon(time.sleep, 0.5)  # a callback that holds the loop
        await asyncio.sleep(0.12)
        loop.call_soon(time.sleep, 0.5)  # again, within warn_every_s: measured, not logged again
        await asyncio.sleep(0.12)
        task.cancel()
    assert len(seen) >= 4
    assert sum(1 for lag in seen if lag >= 0.4) == 2  # the two held turns, and only they
    stalls = [e for e in logs if e["event"] == "event loop stalled"]
    assert len(stalls) == 1 and stalls[0]["lag_ms"] >= 400


async def test_a_running_csms_exports_its_loop_lag(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    await asyncio.sleep(0.3)  # the watcher is asleep, due within 0.25 s
    asyncio.get_running_loop().call_soon(time.sleep, 0.6)  # hold the CSMS's loop (the test shares it)
    lines: dict[str, float] = {}
    for _ in range(50):  # bounded: ~5 s
        await asyncio.sleep(0.1)
        text = (await api.get("/metrics")).text
        lines = {k: float(v) for k, _, v in (line.rpartition(" ") for line in text.splitlines())
                 if k.startswith("csms_event_loop_lag_seconds")}
        if lines.get("csms_event_loop_lag_seconds_count", 0) >= 3:
            break
    count = lines["csms_event_loop_lag_seconds_count"]
    assert count >= 3
    assert lines['csms_event_loop_lag_seconds_bucket{le="0.25"}'] < count  # the held turn: 0.35 s or more
    assert lines["csms_event_loop_lag_seconds_sum"] >= 0.35
