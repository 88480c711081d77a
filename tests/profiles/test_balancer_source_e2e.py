"""The load balancer's own profiles stay distinguishable: a charging car on a balanced feeder gets
the balancer's TxProfile, listed under ``balancer`` with source balancer beside the operator's, and
the 2.0.1 station's own report tells them apart the same way."""

from __future__ import annotations

from pathlib import Path

import httpx

from csms.app import running
from csms.balancer.plugin import balancer_plugin
from csms.display.plugin import display_plugin
from csms.profiles.plugin import profiles_plugin
from ocppj.versions import OcppVersion
from tests.conftest import make_settings
from tests.simulators.sim_support import make_charger, wait_until
from tests.simulators.sim_support import running as charging


async def test_the_balancer_s_profiles_are_listed_apart_from_the_operator_s(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, accept_unknown_tags=True, balancer={
        "enabled": True, "tick_s": 0.5, "min_interval_per_station_s": 0.5,
        "nodes": [{"id": "site", "limit_a": 10}],
        "evses": [{"station_id": "BAL-1", "evse_id": 1, "node": "site", "max_a": 32}],
    })
    plugins = [balancer_plugin, profiles_plugin, display_plugin]
    async with (
        running(settings, plugins=plugins) as app,
        httpx.AsyncClient(base_url=app.api_url, timeout=10) as api,
        charging(make_charger(app.ocpp_url, OcppVersion.V201, "BAL-1")),  # a car arrives at once
    ):
        await wait_until(lambda: app.control.protocol_of("BAL-1") is not None, what="BAL-1 connected")
        r = await api.post("/api/chargers/BAL-1/charging-profiles", json={
            "profile_id": 3, "evse_id": 0, "purpose": "ChargingStationMaxProfile", "kind": "Relative",
            "periods": [{"start_s": 0, "limit": 20}]})
        assert r.json()["status"] == "Accepted", r.text

        async def balanced() -> dict[str, object] | None:
            listed = (await api.get("/api/chargers/BAL-1/charging-profiles")).json()
            return listed if listed["balancer"] else None

        listed = await wait_until(balanced, timeout=20, what="the balancer's TxProfile")
        [own] = listed["balancer"]
        assert own["source"] == "balancer" and own["profile_id"] == 900_001 and own["evse_id"] == 1
        assert own["purpose"] == "TxProfile" and own["periods"][0]["limit"] <= 10
        assert [(p["profile_id"], p["source"]) for p in listed["items"]] == [(3, "operator")]
        reported = (await api.get("/api/chargers/BAL-1/charging-profiles/reported")).json()
        installed = {(p["profile"]["id"], p["source"]) for p in reported["profiles"]}
        assert {(3, "operator"), (900_001, "balancer")} <= installed
        r = await api.delete("/api/chargers/BAL-1/charging-profiles/900001")
        assert r.status_code == 400 and "load balancer" in r.json()["detail"]
        # the balancer's places (purpose and stack level) on an EVSE it drives are refused
        tx = {"transaction_id": own["transaction_id"]}
        places = ((1, "TxProfile", 1), (1, "TxDefaultProfile", 0), (0, "TxDefaultProfile", 0))
        for evse_id, purpose, level in places:
            r = await api.post("/api/chargers/BAL-1/charging-profiles", json={
                "profile_id": 4, "evse_id": evse_id, "purpose": purpose, "stack_level": level,
                "kind": "Relative", "periods": [{"start_s": 0, "limit": 16}],
                **(tx if purpose == "TxProfile" else {})})
            assert r.status_code == 400 and r.json()["error"] == "invalid_profile", r.text
            assert "load balancer's" in r.json()["detail"]
        r = await api.post("/api/chargers/BAL-1/charging-profiles", json={
            "profile_id": 4, "evse_id": 1, "purpose": "TxDefaultProfile", "stack_level": 2,
            "kind": "Relative", "periods": [{"start_s": 0, "limit": 16}]})
        assert r.json()["status"] == "Accepted", r.text
