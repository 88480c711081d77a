"""Helpers for the simulator's end-to-end tests: quick chargers and polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import httpx
import orjson
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol

from ocppj.versions import OcppVersion
from simulators.arrivals import ArrivalConfig
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.metrics import Recorder
from simulators.model import Behaviour, ChargerSpec, EvseSpec, FaultConfig

T = TypeVar("T")
TAG = "E2ETAG01"
VERSIONS = [OcppVersion.V16, OcppVersion.V201]

AC22 = EvseSpec()
# one car per EVSE within 0.2 s that stays for an hour (simulated)
STAYING = ArrivalConfig(first_within_wall_s=0.2, first_share=1.0, sessions_per_day=0.0,
                        dwell_mean_s=3600.0, dwell_min_s=3600.0, dwell_max_s=3600.0)
QUICK = Behaviour(call_timeout_s=5.0, reconnect_base_s=0.2, reconnect_max_s=1.0, stop_grace_s=5.0,
                  faults=FaultConfig(offline_min_s=1.0, offline_max_s=1.0,
                                     connector_fault_min_s=60.0, connector_fault_max_s=60.0))


def make_charger(
    url: str, version: OcppVersion, station_id: str, *, recorder: Recorder | None = None,
    arrivals: ArrivalConfig | None = STAYING, meter_interval_s: float = 0.3, evses: int = 1,
    behaviour: Behaviour = QUICK, seed: int = 3, evse: EvseSpec = AC22,
) -> VirtualCharger:
    spec = ChargerSpec(station_id, version, evses=(evse,) * evses, meter_interval_s=meter_interval_s,
                       seed=seed)
    return VirtualCharger(spec, url=url, clock=SimClock(), recorder=recorder or Recorder(),
                          behaviour=behaviour, arrivals=arrivals, id_tags=[TAG])


@contextlib.asynccontextmanager
async def running(charger: VirtualCharger) -> AsyncIterator[VirtualCharger]:
    """Run a charger for the body of the block; stop it gracefully afterwards."""
    task = asyncio.create_task(charger.run())
    try:
        yield charger
    finally:
        charger.stop()
        await asyncio.wait_for(task, 10)


async def wait_until(probe: Callable[[], Awaitable[T | None] | T | None], *, timeout: float = 10.0,
                     what: str = "condition") -> T:
    """Poll ``probe`` (sync or async) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.05)


async def register_tags(api: httpx.AsyncClient, tags: list[str]) -> None:
    for tag in tags:
        r = await api.post("/api/id-tags", json={"id_tag": tag})
        assert r.status_code in (200, 201), r.text


async def transactions(api: httpx.AsyncClient, station_id: str) -> list[dict[str, Any]]:
    r = await api.get("/api/transactions", params={"charger_id": station_id})
    r.raise_for_status()
    result: list[dict[str, Any]] = r.json()
    return result


async def active_tx(api: httpx.AsyncClient, station_id: str) -> dict[str, Any] | None:
    return next((t for t in await transactions(api, station_id) if t["active"]), None)


async def action(api: httpx.AsyncClient, station_id: str, name: str, payload: dict[str, Any]) -> Any:
    """Send a CSMS-initiated call through the operator API; the station's answer."""
    r = await api.post(f"/api/chargers/{station_id}/actions/{name}", json=payload)
    assert r.status_code == 200, f"{name}: {r.status_code} {r.text}"
    return r.json()


async def evse_view(api: httpx.AsyncClient, station_id: str, evse_id: int = 1) -> dict[str, Any]:
    r = await api.get(f"/api/chargers/{station_id}")
    r.raise_for_status()
    return next((e for e in r.json()["evses"] if e["evse_id"] == evse_id), {})


@contextlib.asynccontextmanager
async def raw_csms(handler: Callable[[ServerConnection], Awaitable[None]]) -> AsyncIterator[str]:
    """A hand-written 'CSMS' (raw frames) on a free port; yields its OCPP URL."""
    protocols = [Subprotocol("ocpp2.0.1"), Subprotocol("ocpp1.6")]
    async with serve(handler, "127.0.0.1", 0, subprotocols=protocols) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield f"ws://127.0.0.1:{port}/ocpp"


async def recv_frame(ws: ServerConnection) -> list[Any]:
    frame: list[Any] = orjson.loads(await asyncio.wait_for(ws.recv(), 10))
    return frame
