"""Sites, groups, placement and connector specs through the operator API, and targets resolving
to the stations they name, on a real CSMS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.app import running
from csms.core.targets import Targets
from tests.conftest import make_settings

SITE = {
    "site_id": "harbour", "name": "Harbour car park", "address": "Quay 1", "city": "Model City",
    "postal_code": "12345", "country": "DEU", "latitude": 53.54, "longitude": 9.98, "operator": "City Power",
    "time_zone": "Europe/Berlin",
    "opening_hours": {"twentyfourseven": False, "regular_hours": [
        {"weekday": d, "period_begin": "06:00", "period_end": "22:00"} for d in range(1, 6)]},
}


async def _register(api: httpx.AsyncClient, *ids: str) -> None:
    for sid in ids:
        assert (await api.put(f"/api/chargers/{sid}", json={})).is_success


async def test_a_site_is_created_listed_placed_and_removed(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        await _register(api, "CP1", "CP2", "CP3")
        r = await api.post("/api/sites", json=SITE)
        assert r.status_code == 201, r.text
        assert r.json()["opening_hours"]["regular_hours"][0] == {
            "weekday": 1, "period_begin": "06:00", "period_end": "22:00"}
        assert (await api.post("/api/sites", json=SITE)).json()["error"] == "exists"
        generated = (await api.post("/api/sites", json={"name": "Depot"})).json()
        assert generated["site_id"].startswith("site-") and generated["time_zone"] == "UTC"

        for sid in ("CP1", "CP2"):
            placement = {"site_id": "harbour", "groups": ["north"]}
            r = await api.put(f"/api/chargers/{sid}/placement", json=placement)
            assert r.json() == {"id": sid, "site_id": "harbour", "groups": ["north"]}
        sites = {s["site_id"]: s["station_count"] for s in (await api.get("/api/sites")).json()}
        assert sites == {"harbour": 2, generated["site_id"]: 0}
        assert (await api.get("/api/sites/harbour")).json()["stations"] == ["CP1", "CP2"]

        listed = (await api.get("/api/chargers", params={"site_id": "harbour"})).json()
        assert [(c["id"], c["site_id"], c["groups"]) for c in listed] == [
            ("CP1", "harbour", ["north"]), ("CP2", "harbour", ["north"])]
        detail = (await api.get("/api/chargers/CP1")).json()
        assert detail["site_id"] == "harbour" and detail["groups"] == ["north"]

        assert (await api.delete("/api/sites/harbour")).status_code == 204
        assert (await api.get("/api/chargers/CP1")).json()["site_id"] is None
        assert (await api.get("/api/sites/harbour")).status_code == 404


async def test_groups_gather_stations_and_resolve_as_targets(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        await _register(api, "A1", "A2", "B1")
        r = await api.put("/api/groups/fleet-a", json={"stations": ["A1", "A2"]})
        assert r.json()["stations"] == ["A1", "A2"]
        r = await api.post("/api/groups/late/members", json={"stations": ["B1", "A1"]})
        assert r.json()["added"] == 2
        assert (await api.post("/api/groups/late/members", json={"stations": ["B1"]})).json()["added"] == 0
        assert (await api.get("/api/groups")).json() == [
            {"name": "fleet-a", "station_count": 2}, {"name": "late", "station_count": 2}]
        late = (await api.get("/api/chargers", params={"group": "late"})).json()
        assert [c["id"] for c in late] == ["A1", "B1"]

        assert app.store is not None
        assert await app.store.sites.resolve(Targets.parse({"group": "fleet-a"})) == ["A1", "A2"]
        assert await app.store.sites.resolve(Targets.parse({"stations": ["B1", "ZZ"]})) == ["B1"]

        assert (await api.delete("/api/groups/late/members/A1")).status_code == 204
        assert (await api.delete("/api/groups/late/members/A1")).status_code == 404
        assert (await api.delete("/api/groups/fleet-a")).status_code == 204
        assert (await api.get("/api/groups/fleet-a")).status_code == 404
        # a deleted station leaves its groups
        assert (await api.delete("/api/chargers/B1")).status_code == 204
        assert (await api.get("/api/groups/late")).status_code == 404


async def test_connector_specs_say_what_each_connector_is(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        await _register(api, "DC1")
        specs = [
            {"evse_id": 1, "connector_id": 1, "standard": "IEC_62196_T2_COMBO", "format": "CABLE",
             "power_type": "DC", "max_power_w": 150_000},
            {"evse_id": 1, "connector_id": 2, "standard": "CHADEMO", "format": "CABLE", "power_type": "DC",
             "max_power_w": 50_000},
        ]
        r = await api.put("/api/chargers/DC1/connectors", json=specs)
        assert r.json() == specs
        assert (await api.get("/api/chargers/DC1")).json()["connector_specs"] == specs
        r = await api.put("/api/chargers/DC1/connectors", json=[specs[0], specs[0]])
        assert r.status_code == 400 and "once" in r.json()["detail"]


@pytest.mark.parametrize(("body", "needle"), [
    ({"name": ""}, "name"),
    ({"name": "x", "country": "Germany"}, "country"),
    ({"name": "x", "latitude": 91, "longitude": 0}, "latitude"),
    ({"name": "x", "latitude": 50}, "together"),
    ({"name": "x", "time_zone": "Mars/Olympus"}, "IANA"),
    ({"name": "x", "opening_hours": {"twentyfourseven": True, "regular_hours": [
        {"weekday": 1, "period_begin": "06:00", "period_end": "22:00"}]}}, "twentyfourseven"),
    ({"name": "x", "opening_hours": {"twentyfourseven": False, "regular_hours": [
        {"weekday": 8, "period_begin": "6", "period_end": "22:00"}]}}, "weekday"),
    ({"name": "x", "colour": "red"}, "colour"),
])
async def test_bad_sites_get_a_precise_error(tmp_path: Path, body: dict[str, Any], needle: str) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        r = await api.post("/api/sites", json=body)
        assert r.status_code == 400 and needle in r.json()["detail"], r.text


async def test_placement_checks_the_station_site_and_group_names(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        await _register(api, "P1")
        r = await api.put("/api/chargers/NOPE/placement", json={"groups": ["g"]})
        assert (r.status_code, r.json()["error"]) == (400, "not_registered")
        r = await api.put("/api/chargers/P1/placement", json={"site_id": "nowhere"})
        assert (r.status_code, r.json()["error"]) == (400, "unknown_site")
        r = await api.put("/api/chargers/P1/placement", json={"groups": ["has space"]})
        assert r.status_code == 400
        r = await api.put("/api/groups/g1", json={"stations": ["P1", "GHOST"]})
        assert r.status_code == 400 and "GHOST" in r.json()["detail"]


def test_targets_name_exactly_one_kind() -> None:
    assert Targets.parse({"stations": ["a", "a", "b"]}).stations == ("a", "b")
    for bad in ({}, {"stations": [], "group": None}, {"group": "g", "site": "s"}, {"stations": "a"},
                {"group": ""}, {"everything": True}, []):
        with pytest.raises(ValueError):
            Targets.parse(bad)
    assert Targets.parse({"site": "s"}).to_json() == {"site": "s"}
