"""Virtual chargers for the desired-configuration tests: the real simulator, no cars."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx

from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.metrics import Recorder
from simulators.model import Behaviour, ChargerSpec, EvseSpec, FaultConfig

QUICK = Behaviour(call_timeout_s=5.0, reconnect_base_s=0.2, reconnect_max_s=1.0, stop_grace_s=5.0,
                  faults=FaultConfig(offline_min_s=2.0, offline_max_s=2.0))  # only injected ones


def sid(version: OcppVersion, name: str) -> str:
    return f"{name}-{'16' if version is OcppVersion.V16 else '201'}"


@contextlib.asynccontextmanager
async def charger(url: str, version: OcppVersion, station_id: str) -> AsyncIterator[VirtualCharger]:
    """A virtual charger connected for the body of the block, stopped (and awaited) on every exit."""
    spec = ChargerSpec(station_id, version, evses=(EvseSpec(),), meter_interval_s=60.0, seed=5)
    c = VirtualCharger(spec, url=url, clock=SimClock(), recorder=Recorder(), behaviour=QUICK, arrivals=None)
    task = asyncio.create_task(c.run())
    try:
        yield c
    finally:
        c.stop()
        await asyncio.wait_for(task, 10)


async def wait_for(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 10.0) -> Any:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.1)


async def results(api: httpx.AsyncClient, station_id: str) -> dict[str, Any]:
    r = await api.get(f"/api/chargers/{station_id}/config-results")
    assert r.status_code == 200, r.text
    got: dict[str, Any] = r.json()
    return got


async def action(api: httpx.AsyncClient, station_id: str, name: str, payload: dict[str, Any]) -> Any:
    """A raw OCPP action through the operator API; the station's answer."""
    r = await api.post(f"/api/chargers/{station_id}/actions/{name}", json=payload)
    assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
    return r.json()
