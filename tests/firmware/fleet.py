"""A CSMS with firmware campaigns and a fleet of simulated chargers for the firmware tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from csms.app import CsmsApp, running
from csms.firmware.plugin import firmware_plugin
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.firmware import FirmwareFaults, FirmwareOptions
from simulators.metrics import Recorder
from simulators.model import Behaviour, ChargerSpec
from tests.conftest import make_settings
from tests.simulators.sim_support import wait_until

FAST = Behaviour(call_timeout_s=5.0, reconnect_base_s=0.2, reconnect_max_s=1.0, stop_grace_s=3.0,
                 firmware=FirmwareOptions(step_s=0.05, timeout_s=5.0))


def image(version: str, size: int = 20_000) -> bytes:
    """A simulated firmware image that installs ``version``."""
    return f"SIMFW {version}\n".encode() + os.urandom(size)


@dataclass
class Fleet:
    app: CsmsApp
    api: httpx.AsyncClient
    chargers: dict[str, VirtualCharger]
    recorder: Recorder

    async def upload(self, body: bytes, name: str = "fw.bin") -> dict[str, Any]:
        r = await self.api.post("/api/firmware-files", params={"name": name}, content=body)
        assert r.status_code == 201, r.text
        return dict(r.json())

    async def campaign(self, campaign_id: int) -> dict[str, Any]:
        r = await self.api.get(f"/api/firmware-campaigns/{campaign_id}")
        assert r.status_code == 200, r.text
        return dict(r.json())

    async def wait_state(self, campaign_id: int, state: str, timeout: float = 60.0) -> dict[str, Any]:
        async def probe() -> dict[str, Any] | None:
            c = await self.campaign(campaign_id)
            return c if c["state"] == state else None
        return await wait_until(probe, timeout=timeout, what=f"campaign {campaign_id} {state}")


def specs(n: int, prefix: str, faults: dict[int, FirmwareFaults] | None = None) -> list[ChargerSpec]:
    """``n`` chargers, 1.6 and 2.0.1 alternating, on firmware 1.0.0."""
    return [
        ChargerSpec(f"{prefix}{i:03d}", OcppVersion.V16 if i % 2 else OcppVersion.V201, meter_interval_s=3600,
                    heartbeat_interval_s=3600, seed=i, firmware_faults=(faults or {}).get(i))
        for i in range(n)
    ]


@contextlib.asynccontextmanager
async def fleet(
    tmp_path: Path, chargers: Sequence[ChargerSpec], behaviour: Behaviour = FAST, **firmware: Any
) -> AsyncIterator[Fleet]:
    """A CSMS (firmware campaigns ticking every 0.1 s) and ``chargers`` booted on it."""
    settings = make_settings(tmp_path, firmware={"tick_s": 0.1, **firmware})
    async with running(settings, plugins=[firmware_plugin]) as app, \
            httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        recorder = Recorder()
        sims = {s.station_id: VirtualCharger(s, url=app.ocpp_url, clock=SimClock(), recorder=recorder,
                                             behaviour=behaviour, arrivals=None) for s in chargers}
        tasks = [asyncio.create_task(c.run()) for c in sims.values()]
        try:
            await wait_until(lambda: all(c.accepted for c in sims.values()), timeout=20, what="every boot")
            yield Fleet(app, api, sims, recorder)
        finally:
            for c in sims.values():
                c.stop()
            _, pending = await asyncio.wait(tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
