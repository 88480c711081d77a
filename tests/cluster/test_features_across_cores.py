"""Features with stations on both cores (two core processes and a gateway on a real Mosquitto and
PostgreSQL): a firmware campaign created through the core that does not schedule it, and a
profile report asked through the core that does not serve the station."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets
from websockets.typing import Subprotocol

from tests.cluster.test_broker_nodes import cluster, http, located, until

pytestmark = pytest.mark.timeout(120)
__all__ = ["cluster"]  # the fixture: two cores and a gateway


class UpdatingStation:
    """An OCPP 1.6 station that installs what UpdateFirmware names and boots on the new version."""

    def __init__(self, url: str, station_id: str) -> None:
        self.url, self.station_id = url, station_id
        self.updates = 0
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with websockets.connect(f"{self.url}/{self.station_id}",
                                      subprotocols=[Subprotocol("ocpp1.6")]) as ws:
            await ws.send(json.dumps([2, "boot", "BootNotification", {
                "chargePointVendor": "ACME", "chargePointModel": "X", "firmwareVersion": "1.0.0"}]))
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] != 2:
                    continue
                if msg[2] != "UpdateFirmware":
                    await ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
                    continue
                self.updates += 1
                await ws.send(json.dumps([3, msg[1], {}]))
                for status in ("Downloaded", "Installed"):
                    await ws.send(json.dumps([2, f"fw-{status}", "FirmwareStatusNotification",
                                              {"status": status}]))
                await ws.send(json.dumps([2, "reboot", "BootNotification", {
                    "chargePointVendor": "ACME", "chargePointModel": "X", "firmwareVersion": "2.0.0"}]))


async def test_a_campaign_made_through_either_core_updates_every_cores_stations_once(
    cluster: dict[str, Any],
) -> None:
    api = cluster["api"]
    stations = [UpdatingStation(cluster["ocpp"], f"FW-{i}") for i in range(6)]
    try:
        for st in stations:
            st.task = asyncio.create_task(st.run())
            await asyncio.sleep(0.05)

        ids = [st.station_id for st in stations]
        where = await until(lambda: located(api["core-1"], ids), 30, "every station connected")
        assert set(where.values()) == {"core-1", "core-2"}, where

        def scheduler() -> str | None:
            _, body = http("GET", f"{api['core-1']}/api/cluster")
            for lease in body["leases"]:
                if lease["name"] == "firmware-campaigns" and lease["holder"]:
                    return str(lease["holder"])
            return None

        holder = await until(scheduler, 15, "a core holding firmware-campaigns")
        other = "core-2" if holder == "core-1" else "core-1"
        status, made = await asyncio.to_thread(http, "POST", f"{api[other]}/api/firmware-campaigns", {
            "version": "2.0.0", "location": "https://fw.example/2.0.0.bin",
            "targets": {"stations": [st.station_id for st in stations]}, "wave_size": 3})
        assert status == 201, made

        def done() -> dict[str, Any] | None:
            _, c = http("GET", f"{api[other]}/api/firmware-campaigns/{made['id']}")
            return c if c["state"] == "done" else None

        final = await until(done, 60, "the campaign done")
        assert final["counts"]["installed"] == 6, final
        assert [st.updates for st in stations] == [1] * 6  # sent once each, by the scheduling core
    finally:
        for st in stations:
            if st.task is not None:
                st.task.cancel()
        await asyncio.gather(*[st.task for st in stations if st.task is not None], return_exceptions=True)


class ReportingStation:
    """An OCPP 2.0.1 station that reports one installed charging profile when asked."""

    def __init__(self, url: str, station_id: str) -> None:
        self.url, self.station_id = url, station_id
        self.task: asyncio.Task[None] | None = None

    async def run(self) -> None:
        async with websockets.connect(f"{self.url}/{self.station_id}",
                                      subprotocols=[Subprotocol("ocpp2.0.1")]) as ws:
            await ws.send(json.dumps([2, "boot", "BootNotification", {
                "reason": "PowerUp", "chargingStation": {"model": "X", "vendorName": "ACME"}}]))
            async for raw in ws:
                msg = json.loads(raw)
                if msg[0] != 2:
                    continue
                await ws.send(json.dumps([3, msg[1], {"status": "Accepted"}]))
                if msg[2] == "GetChargingProfiles":
                    await ws.send(json.dumps([2, "report", "ReportChargingProfiles", {
                        "requestId": msg[3]["requestId"], "chargingLimitSource": "CSO", "evseId": 1,
                        "chargingProfile": [{
                            "id": 7, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                            "chargingProfileKind": "Absolute",
                            "chargingSchedule": [{
                                "id": 1, "chargingRateUnit": "A", "startSchedule": "2030-01-01T00:00:00Z",
                                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}]}],
                        }]}]))


async def test_a_report_asked_through_one_core_is_collected_from_a_station_of_the_other(
    cluster: dict[str, Any],
) -> None:
    api = cluster["api"]
    stations = [ReportingStation(cluster["ocpp"], f"RP-{i}") for i in range(4)]
    try:
        for st in stations:
            st.task = asyncio.create_task(st.run())
            await asyncio.sleep(0.05)

        ids = [st.station_id for st in stations]
        where = await until(lambda: located(api["core-1"], ids), 30, "every station connected")
        for st in stations:
            asking = "core-2" if where[st.station_id] == "core-1" else "core-1"
            url = f"{api[asking]}/api/chargers/{st.station_id}/charging-profiles/reported?wait_s=10"
            status, report = await asyncio.to_thread(http, "GET", url)
            assert status == 200, report
            assert report["status"] == "Accepted" and report["complete"], report
            assert [p["profile"]["id"] for p in report["profiles"]] == [7]
    finally:
        for st in stations:
            if st.task is not None:
                st.task.cancel()
        await asyncio.gather(*[st.task for st in stations if st.task is not None], return_exceptions=True)
