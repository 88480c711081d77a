"""A CSMS with reservations on, a virtual charger for it, and polling helpers."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from csms.app import CsmsApp, running
from csms.reservations.plugin import reservations_plugin
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.metrics import Recorder
from simulators.model import Behaviour, ChargerSpec, EvseSpec
from tests.conftest import make_settings

T = TypeVar("T")
TAG = "RESTAG01"
OTHER = "OTHERTAG"
VERSIONS = [OcppVersion.V16, OcppVersion.V201]
QUICK = Behaviour(call_timeout_s=5.0, reconnect_base_s=0.2, reconnect_max_s=1.0, stop_grace_s=5.0)


@contextlib.asynccontextmanager
async def reservations_csms(
    tmp_path: Path, **settings: Any
) -> AsyncIterator[tuple[CsmsApp, httpx.AsyncClient]]:
    """A running CSMS with the reservations plugin (expiry checked every 0.1 s) and its API client."""
    cfg = make_settings(tmp_path, reservations={"tick_s": 0.1}, **settings)
    async with (running(cfg, plugins=[reservations_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url, timeout=10) as api):
        yield app, api


def sid(version: OcppVersion, name: str) -> str:
    return f"{name}-{'16' if version is OcppVersion.V16 else '201'}"


def charger(url: str, version: OcppVersion, station_id: str, *, evses: int = 1) -> VirtualCharger:
    """A charger no car comes to by itself: sessions start when a test says."""
    spec = ChargerSpec(station_id, version, evses=(EvseSpec(),) * evses, meter_interval_s=0.3, seed=5)
    return VirtualCharger(spec, url=url, clock=SimClock(), recorder=Recorder(), behaviour=QUICK,
                          arrivals=None, id_tags=[TAG])


@contextlib.asynccontextmanager
async def charging(c: VirtualCharger) -> AsyncIterator[VirtualCharger]:
    """Run ``c`` for the body of the block, stopped on every exit."""
    task = asyncio.create_task(c.run())
    try:
        yield c
    finally:
        c.stop()
        await asyncio.wait_for(task, 10)


async def wait_until(probe: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0, what: str) -> T:
    """Poll ``probe`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


def in_s(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


async def connector_status(api: httpx.AsyncClient, station_id: str, evse_id: int = 1) -> str | None:
    r = await api.get(f"/api/chargers/{station_id}")
    if r.status_code != 200:
        return None
    evse = next((e for e in r.json()["evses"] if e["evse_id"] == evse_id), None)
    if evse is None or not evse["connectors"]:
        return None
    status: str | None = evse["connectors"][0]["status"]
    return status


async def status_is(api: httpx.AsyncClient, station_id: str, wanted: str) -> bool:
    return await connector_status(api, station_id) == wanted


async def online(api: httpx.AsyncClient, station_id: str) -> bool:
    r = await api.get(f"/api/chargers/{station_id}")
    return r.status_code == 200 and bool(r.json().get("connected")) and await connector_status(
        api, station_id) == "Available"
