"""Last seen from every frame, online/offline, and the charger list read from the registry,
with stations registered and removed by the CLI in another process."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import websockets
from ocpp.v16 import call

from csms.app import running
from ocppj.timestamps import parse_datetime
from tests.conftest import make_settings
from tests.e2e.stations import Station16, connected

ROOT = Path(__file__).resolve().parents[2]


def _cli(db: str, *args: str) -> None:
    """``csms stations ...`` in its own process, on the running CSMS's database."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CSMS_DB": db}
    subprocess.run([sys.executable, "-m", "csms", "stations", *args], env=env, check=True, timeout=60,
                   capture_output=True)


async def _meter_values(station: Station16, seconds: float) -> None:
    stop = time.monotonic() + seconds
    energy = 0
    while time.monotonic() < stop:
        energy += 10
        await station.call(call.MeterValues(connector_id=1, meter_value=[{
            "timestamp": datetime.now(UTC).isoformat(),
            "sampledValue": [{"value": str(energy), "measurand": "Energy.Active.Import.Register",
                              "unit": "Wh"}],
        }]))
        await asyncio.sleep(1.0)


async def test_a_station_sending_only_meter_values_stays_seen_and_online_then_goes_offline(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, heartbeat_interval_s=2, offline_after_heartbeats=3)
    async with running(settings) as app, httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        async with connected(Station16, app.ocpp_url, "CP-MV", "ocpp1.6") as station:
            await _meter_values(station, 9.0)  # no heartbeat, three heartbeat intervals and more
            view = (await api.get("/api/chargers/CP-MV")).json()
            last_seen = parse_datetime(view["last_seen"])
            assert abs((datetime.now(UTC) - last_seen).total_seconds()) < 3.0
            assert view["connected"] is True and view["online"] is True
            await asyncio.sleep(7.0)  # silent for more than 3 x 2 s (keepalive pings are a minute away)
            view = (await api.get("/api/chargers/CP-MV")).json()
            assert view["connected"] is True and view["online"] is False
        await asyncio.sleep(1.5)  # the write-behind flush
        stored = await app.store.get_station("CP-MV") if app.store else None
        assert stored is not None and stored.last_seen_at is not None
        assert abs((last_seen - stored.last_seen_at).total_seconds()) < 1.5


async def test_the_charger_list_is_the_registry_including_what_the_cli_adds_and_removes(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, auto_register=False)
    async with running(settings) as app, httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        put = await api.put("/api/chargers/CP-1", json={"security_profile": 1, "password": "p" * 16})
        assert put.status_code == 200 and put.json()["security_profile"] == 1
        listed = {c["id"]: c for c in (await api.get("/api/chargers")).json()}
        single = (await api.get("/api/chargers/CP-1")).json()
        assert listed["CP-1"]["security_profile"] == single["security_profile"] == 1

        await asyncio.to_thread(_cli, settings.db, "add", "CP-CLI")
        assert "CP-CLI" in [c["id"] for c in (await api.get("/api/chargers")).json()]
        assert (await api.get("/api/chargers/CP-CLI")).json()["connected"] is False

        await asyncio.to_thread(_cli, settings.db, "add", "CP-LIVE")
        async with websockets.connect(f"{app.ocpp_url}/CP-LIVE", subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
            await asyncio.sleep(0.2)
            assert (await api.get("/api/chargers/CP-LIVE")).json()["connected"] is True
            await asyncio.to_thread(_cli, settings.db, "remove", "CP-LIVE")
            assert (await api.get("/api/chargers/CP-LIVE")).status_code == 404
            assert "CP-LIVE" not in [c["id"] for c in (await api.get("/api/chargers")).json()]
            async with asyncio.timeout(10):  # found on a periodic flush and closed
                await ws.wait_closed()
            assert ws.close_code == 1000 and ws.close_reason == "deregistered"

        await asyncio.to_thread(_cli, settings.db, "remove", "CP-1")
        assert (await api.get("/api/chargers/CP-1")).status_code == 404


async def test_a_station_that_only_answers_keepalive_pings_stays_seen(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, heartbeat_interval_s=2, ping_interval_s=1.0, ping_timeout_s=2.0)
    async with running(settings) as app, httpx.AsyncClient(base_url=app.api_url, timeout=10) as api, \
            websockets.connect(f"{app.ocpp_url}/CP-PONG", subprotocols=["ocpp1.6"]):  # type: ignore[list-item]
        await asyncio.sleep(7.0)  # no frame at all; the client answers the CSMS's pings
        view = (await api.get("/api/chargers/CP-PONG")).json()
        assert view["connected"] is True and view["online"] is True
        last_seen = parse_datetime(view["last_seen"])
        assert (datetime.now(UTC) - last_seen).total_seconds() < 3.0
