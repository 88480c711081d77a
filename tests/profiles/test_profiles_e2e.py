"""Charging profiles by hand over real sockets: the simulator's 1.6 and 2.0.1 chargers take them,
the API keeps, lists and clears them, and reads their composite schedule in one shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from csms.app import CsmsApp
from ocppj.versions import OcppVersion
from tests.simulators.sim_support import VERSIONS, make_charger, running, wait_until

MAX_PURPOSE = {OcppVersion.V16: "ChargePointMaxProfile", OcppVersion.V201: "ChargingStationMaxProfile"}
OTHER_MAX = {OcppVersion.V16: "ChargingStationMaxProfile", OcppVersion.V201: "ChargePointMaxProfile"}


async def connected(csms: CsmsApp, station_id: str) -> None:
    await wait_until(lambda: csms.control.protocol_of(station_id) is not None, what=f"{station_id} connected")


def profile(profile_id: int, **over: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"profile_id": profile_id, "evse_id": 1, "purpose": "TxDefaultProfile",
                            "stack_level": 2, "kind": "Absolute", "unit": "A",
                            "periods": [{"start_s": 0, "limit": 16}, {"start_s": 60, "limit": 10}]}
    body.update(over)
    return body


@pytest.mark.parametrize("version", VERSIONS)
async def test_profiles_are_set_listed_scheduled_and_cleared(
    version: OcppVersion, ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = f"PROF-{version.name}"
    async with running(make_charger(ops_csms.ocpp_url, version, sid, arrivals=None)):
        await connected(ops_csms, sid)
        r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=profile(7))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "Accepted" and r.json()["source"] == "operator"
        assert r.json()["start_schedule"] is not None  # an Absolute profile starts now by default
        cap = {"profile_id": 8, "evse_id": 0, "purpose": MAX_PURPOSE[version], "stack_level": 1,
               "kind": "Relative", "unit": "A",
               "periods": [{"start_s": 0, "limit": 12.5, "number_phases": 3}]}
        r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=cap)
        assert r.status_code == 200 and r.json()["status"] == "Accepted", r.text

        listed = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles")).json()
        assert [(p["profile_id"], p["purpose"], p["status"]) for p in listed["items"]] == [
            (7, "TxDefaultProfile", "Accepted"), (8, MAX_PURPOSE[version], "Accepted")]
        assert listed["items"][0]["periods"] == [{"start_s": 0, "limit": 16.0, "number_phases": None},
                                                 {"start_s": 60, "limit": 10.0, "number_phases": None}]
        page = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles", params={"limit": 1})).json()
        assert [p["profile_id"] for p in page["items"]] == [7] and page["next_cursor"] == "7"
        rest = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles",
                                  params={"limit": 1, "cursor": page["next_cursor"]})).json()
        assert [p["profile_id"] for p in rest["items"]] == [8]

        r = await ops_api.get(f"/api/chargers/{sid}/charging-profiles/reported")
        if version is OcppVersion.V201:  # the station's own account (GetChargingProfiles)
            assert r.status_code == 200 and r.json()["status"] == "Accepted" and r.json()["complete"], r.text
            installed = sorted((p["evse_id"], p["profile"]["id"], p["source"], p["limit_source"])
                               for p in r.json()["profiles"])
            assert installed == [(0, 8, "operator", "CSO"), (1, 7, "operator", "CSO")]
            only = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles/reported",
                                      params={"evse_id": 0})).json()
            assert [p["profile"]["id"] for p in only["profiles"]] == [8]
        else:
            assert r.status_code == 409 and r.json()["error"] == "unsupported_version"
        r = await ops_api.get(f"/api/chargers/{sid}/composite-schedule",
                              params={"evse_id": 1, "duration_s": 300, "unit": "A"})
        assert r.status_code == 200, r.text
        comp = r.json()
        assert comp["status"] == "Accepted" and comp["evse_id"] == 1 and comp["unit"] == "A"
        assert comp["duration_s"] == 300 and comp["schedule_start"] is not None
        limits = [p["limit"] for p in comp["periods"]]
        assert limits[0] == 12.5  # the station cap is tighter than the default's 16 A
        assert limits[-1] == 10.0  # the default's second period
        assert 55 <= comp["periods"][-1]["start_s"] <= 61

        r = await ops_api.delete(f"/api/chargers/{sid}/charging-profiles/8")
        assert r.json() == {"charger_id": sid, "profile_id": 8, "status": "Accepted", "detail": None,
                            "removed": True}
        comp = (await ops_api.get(f"/api/chargers/{sid}/composite-schedule",
                                  params={"evse_id": 1, "duration_s": 300})).json()
        assert comp["periods"][0]["limit"] == 16.0
        again = (await ops_api.delete(f"/api/chargers/{sid}/charging-profiles/8")).json()
        assert again["status"] == "Unknown" and again["removed"] is False
        listed = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles")).json()
        assert [p["profile_id"] for p in listed["items"]] == [7]

        outcomes = (await ops_api.get(f"/api/chargers/{sid}/operator-commands")).json()["items"]
        reports = [("GetChargingProfiles", "Accepted")] * 2 if version is OcppVersion.V201 else []
        assert [(o["action"], o["status"]) for o in outcomes] == [  # newest first
            ("ClearChargingProfile", "Unknown"), ("GetCompositeSchedule", "Accepted"),
            ("ClearChargingProfile", "Accepted"), ("GetCompositeSchedule", "Accepted"), *reports,
            ("SetChargingProfile", "Accepted"), ("SetChargingProfile", "Accepted")]


@pytest.mark.parametrize("version", VERSIONS)
async def test_invalid_profiles_are_refused_before_anything_is_sent(
    version: OcppVersion, ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = f"BAD-{version.name}"
    async with running(make_charger(ops_csms.ocpp_url, version, sid, arrivals=None)):
        await connected(ops_csms, sid)
        cases = [
            (profile(1, periods=[{"start_s": 5, "limit": 10}]), "periods[0].start_s"),
            (profile(1, periods=[{"start_s": 0, "limit": 10}, {"start_s": 0, "limit": 8}]),
             "periods[1].start_s"),
            (profile(1, periods=[{"start_s": 0, "limit": -1}]), "periods[0].limit"),
            (profile(1, purpose=OTHER_MAX[version], evse_id=0), "purpose"),
            (profile(1, purpose=MAX_PURPOSE[version]), "evse_id"),
            (profile(900_001), "load balancer"),
            (profile(1, kind="Recurring"), "recurrency"),
            (profile(1, kind="Relative", start_schedule="2026-12-07T10:00:00Z"), "start_schedule"),
            (profile(1, valid_from="2026-12-08T00:00:00Z", valid_to="2026-12-07T00:00:00Z"), "valid_to"),
            (profile(1, valid_from="2026-12-08T00:00:00", valid_to="2026-12-08T01:00:00+02:00"), "valid_to"),
        ]
        for body, where in cases:
            r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=body)
            assert r.status_code == 400, (body, r.text)
            assert r.json()["error"] == "invalid_profile" and where in r.json()["detail"], r.text
        r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=profile(1, purpose="Nope"))
        assert r.status_code == 400 and r.json()["error"] == "invalid_payload"
        r = await ops_api.get(f"/api/chargers/{sid}/composite-schedule", params={"duration_s": 0})
        assert r.status_code == 400
        assert (await ops_api.get(f"/api/chargers/{sid}/charging-profiles")).json()["items"] == []
        assert (await ops_api.get(f"/api/chargers/{sid}/operator-commands")).json()["items"] == []
    r = await ops_api.post("/api/chargers/NOBODY/charging-profiles", json=profile(1))
    assert r.status_code == 404 and r.json()["error"] == "not_registered"
    r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=profile(1))
    assert r.status_code == 409 and r.json()["error"] == "not_connected"
    assert (await ops_api.get("/api/chargers/NOBODY/charging-profiles")).status_code == 404


async def test_a_transaction_profile_is_rejected_by_the_station_and_kept_with_its_answer(
    ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = "TXP-V201"
    async with running(make_charger(ops_csms.ocpp_url, OcppVersion.V201, sid, arrivals=None)):
        await connected(ops_csms, sid)
        r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles",
                               json=profile(3, purpose="TxProfile", transaction_id="no-such-tx"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "Rejected" and r.json()["detail"] == "TxNotFound"
        [kept] = (await ops_api.get(f"/api/chargers/{sid}/charging-profiles")).json()["items"]
        assert (kept["profile_id"], kept["status"], kept["detail"]) == (3, "Rejected", "TxNotFound")
        r = await ops_api.post(f"/api/chargers/{sid}/charging-profiles", json=profile(3, purpose="TxProfile"))
        assert r.status_code == 400 and "transaction_id" in r.json()["detail"]
