"""Firmware campaigns over real sockets: the CSMS, its HTTP download links and simulated chargers
(OCPP 1.6 and 2.0.1) that really download, install and reboot."""

from __future__ import annotations

import asyncio
from pathlib import Path

from simulators.firmware import FirmwareFaults
from tests.firmware.fleet import fleet, image, specs
from tests.simulators.sim_support import wait_until

ONCE_DOWNLOAD = FirmwareFaults(download=True, first_attempt_only=True)
ONCE_INSTALL = FirmwareFaults(install=True, first_attempt_only=True)
ONCE_REJECT = FirmwareFaults(reject=True, first_attempt_only=True)


async def test_a_campaign_over_50_mixed_stations_installs_everywhere_retrying_injected_failures(
    tmp_path: Path,
) -> None:
    failing = {3: ONCE_DOWNLOAD, 14: ONCE_INSTALL, 25: ONCE_REJECT, 36: ONCE_DOWNLOAD, 47: ONCE_REJECT,
               8: ONCE_INSTALL}  # 1.6 and 2.0.1 stations
    assert len(failing) >= 5  # 10 % and more
    async with fleet(tmp_path, specs(50, "FW", failing)) as f:
        file = await f.upload(image("2.0.0"))
        r = await f.api.post("/api/firmware-campaigns", json={
            "version": "2.0.0", "file_id": file["file_id"], "targets": {"stations": list(f.chargers)},
            "wave_size": 10, "max_retries": 2, "station_timeout_s": 30,
        })
        assert r.status_code == 201, r.text
        campaign = r.json()
        assert campaign["state"] == "running" and len(campaign["waves"]) == 5
        seen_waves: set[int] = set()

        async def done() -> dict[str, object] | None:
            c = await f.campaign(campaign["id"])
            started = {s["wave"] for s in c["stations"] if s["state"] != "pending"}
            seen_waves.add(max(started))
            # a wave starts only after the previous one is installed everywhere (threshold 1.0)
            for s in c["stations"]:
                if s["state"] != "pending":
                    assert all(p["state"] == "installed" for p in c["stations"] if p["wave"] < s["wave"])
            return c if c["state"] == "done" else None

        final = await wait_until(done, timeout=120, what="campaign done")
        assert seen_waves == {0, 1, 2, 3, 4}
        assert final["counts"]["installed"] == 50
        by_id = {s["charger_id"]: s for s in final["stations"]}
        for i, charger_id in enumerate(f.chargers):
            assert by_id[charger_id]["attempts"] == (2 if i in failing else 1), by_id[charger_id]
            assert by_id[charger_id]["wave"] == i // 10
            r = await f.api.get(f"/api/chargers/{charger_id}")
            assert r.json()["firmware_version"] == "2.0.0"
            assert f.chargers[charger_id].spec.firmware_version == "2.0.0"
        assert f.recorder.protocol_errors == 0, f.recorder.errors
        listed = (await f.api.get("/api/firmware-campaigns")).json()
        assert listed[0]["id"] == campaign["id"] and listed[0]["counts"]["installed"] == 50


async def test_pause_holds_the_next_wave_and_abort_stops_sending(tmp_path: Path) -> None:
    async with fleet(tmp_path, specs(6, "PA")) as f:
        file = await f.upload(image("3.1.0"))
        r = await f.api.post("/api/firmware-campaigns", json={
            "version": "3.1.0", "file_id": file["file_id"], "targets": {"stations": list(f.chargers)},
            "wave_size": 2,
        })
        cid = r.json()["id"]
        await wait_until(lambda: any(c.firmware.requests for c in f.chargers.values()),
                         what="first wave sent")
        assert (await f.api.post(f"/api/firmware-campaigns/{cid}/pause")).json()["state"] == "paused"
        assert (await f.api.post(f"/api/firmware-campaigns/{cid}/pause")).status_code == 409

        async def first_wave_installed() -> bool:
            c = await f.campaign(cid)
            return c["waves"][0]["counts"]["installed"] == 2
        await wait_until(first_wave_installed, timeout=30, what="the running wave finishes while paused")
        await asyncio.sleep(0.5)  # several ticks: nothing new is sent while paused
        assert sum(c.firmware.requests for c in f.chargers.values()) == 2
        assert (await f.campaign(cid))["counts"]["pending"] == 4

        assert (await f.api.post(f"/api/firmware-campaigns/{cid}/resume")).json()["state"] == "running"
        await wait_until(lambda: sum(c.firmware.requests for c in f.chargers.values()) == 4,
                         what="the second wave after resume")
        r = await f.api.post(f"/api/firmware-campaigns/{cid}/abort")
        assert r.json()["state"] == "aborted"
        assert r.json()["counts"]["cancelled"] == 2
        await asyncio.sleep(1.0)
        assert sum(c.firmware.requests for c in f.chargers.values()) == 4  # nothing after the abort
        assert (await f.api.post(f"/api/firmware-campaigns/{cid}/resume")).status_code == 409
        final = await f.campaign(cid)
        assert final["state"] == "aborted"
        untouched = [s for s in final["stations"] if s["wave"] == 2]
        assert all(s["state"] == "cancelled" and s["attempts"] == 0 for s in untouched)
