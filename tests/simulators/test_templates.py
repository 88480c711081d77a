"""Station templates and fleet files: parsing, OCPP numbering of connectors, session generators,
and a template fleet booting against the real CSMS with the template's identity and connectors."""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sim_support import wait_until

from csms.app import CsmsApp
from ocppj.versions import OcppVersion
from simulators.arrivals import ArrivalConfig, session_ev
from simulators.fleet import FleetConfig, run_fleet
from simulators.scenario import ScenarioError, balancer_topology, load_scenario, parse_scenario
from simulators.templates import TemplateError, bundled_templates, load_template, parse_template
from simulators.v201 import connector_statuses

DUAL_DC = {
    "vendor": "Acme Power", "model": "Twin DC60", "firmware_version": "7.1.2",
    "feature_profiles": ["Core", "RemoteTrigger"],
    "configuration": {"ConnectionTimeOut": 45, "LocalAuthListEnabled": False},
    "evses": [{"count": 2, "kind": "DC", "max_power_kw": 60,
               "connectors": [{"type": "cCCS2"}, {"type": "cCHAdeMO", "max_power_kw": 50}]}],
}


def test_a_template_becomes_evses_with_connectors_numbered_per_ocpp_version() -> None:
    t = parse_template(DUAL_DC, "twin")
    assert (t.vendor, t.model, t.firmware_version, t.connectors) == ("Acme Power", "Twin DC60", "7.1.2", 4)
    v201 = t.evses_for(OcppVersion.V201)
    assert [len(e.connectors) for e in v201] == [2, 2]
    v16 = t.evses_for(OcppVersion.V16)  # 1.6: connectors 1..4, each its own outlet
    assert [(e.connectors[0].type, e.max_power_w) for e in v16] == [
        ("cCCS2", 60_000.0), ("cCHAdeMO", 50_000.0), ("cCCS2", 60_000.0), ("cCHAdeMO", 50_000.0)]
    spec = t.charger_spec("S1", OcppVersion.V16, serial_number="X", meter_interval_s=60,
                          heartbeat_interval_s=0, node=None, seed=1)
    assert dict(spec.configuration) == {"ConnectionTimeOut": "45", "LocalAuthListEnabled": "false",
                                        "SupportedFeatureProfiles": "Core,RemoteTrigger"}


def test_an_ac_connector_limits_its_outlet_current_on_16() -> None:
    t = parse_template({"evses": [{"max_current_a": 32, "phases": 3,
                                   "connectors": [{"type": "sType2", "max_power_kw": 11}]}]}, "ac")
    (evse,) = t.evses_for(OcppVersion.V16)
    assert evse.max_current_a == pytest.approx(11_000 / (3 * 230))


@pytest.mark.parametrize(("data", "message"), [
    ({}, "needs at least one [[evses]]"),
    ({"evses": [{"kind": "DC"}]}, "a DC EVSE needs max_power_kw"),
    ({"evses": [{"connectors": [{"type": "Schuko"}]}]}, "unknown connector type 'Schuko'"),
    ({"evses": [{"connectors": []}]}, "an EVSE has 1..8 connectors"),
    ({"evses": [{}], "feature_profiles": ["Core", "Teleport"]}, "unknown feature profile(s) ['Teleport']"),
    ({"evses": [{}], "colour": "red"}, "unknown key(s) colour"),
    ({"evses": [{"phases": 2}]}, "phases 1 or 3"),
])
def test_bad_templates_are_refused_with_the_reason(data: dict[str, object], message: str) -> None:
    with pytest.raises(TemplateError, match=None) as info:
        parse_template(data, "bad", where="bad.toml")
    assert message in str(info.value) and "bad.toml" in str(info.value)


def test_bundled_templates_load_and_the_model_city_fleet_file_uses_them() -> None:
    assert {"pillar-ac22", "wallbox-ac11", "hpc-dc50", "hpc-dc150", "depot-dc150"} <= set(bundled_templates())
    assert load_template("hpc-dc50").connectors == 2
    city = load_scenario("model-city-fleet")
    assert city.chargers == load_scenario("model-city").chargers
    specs = city.charger_specs()
    depots = [s for s in specs if s.model == "Depot DC150"]
    assert depots and all(s.version is OcppVersion.V201 and s.node and "-D" in s.node for s in depots)
    assert {s.model for s in specs} == {"Pillar AC22-2", "Wallbox AC11", "HPC DC50", "HPC DC150",
                                        "Depot DC150"}
    assert len(balancer_topology(city)["evses"]) == sum(len(s.evses) for s in specs)


def test_a_fleet_file_mixes_templates_with_exact_counts_that_scale(tmp_path: Path) -> None:
    (tmp_path / "twin.json").write_text(json.dumps(DUAL_DC))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("""
name = "mix"
[[templates]]
name = "tiny"
vendor = "Tiny"
model = "T1"
[[templates.evses]]
max_current_a = 16
[[stations]]
template = "twin.json"
count = 3
protocol = "2.0.1"
[[stations]]
template = "tiny"
count = 1
""")
    s = load_scenario(str(fleet))
    assert s.chargers == 4
    assert [(c.model, c.version) for c in s.charger_specs()] == [("Twin DC60", OcppVersion.V201)] * 3 + [
        ("T1", c.version) for c in s.charger_specs()[3:]]
    assert [c.model for c in s.with_options(chargers=8).charger_specs()].count("Twin DC60") == 6
    with pytest.raises(ScenarioError, match="no template 'nope'"):
        parse_scenario({"stations": [{"template": "nope"}]}, "f.toml", base=tmp_path)
    with pytest.raises(ScenarioError, match="names must be unique"):
        parse_scenario({"stations": [{"template": "hpc-dc50"}, {"template": "hpc-dc50"}]}, "f.toml")


def test_a_json_fleet_file_loads_like_toml(tmp_path: Path) -> None:
    path = tmp_path / "fleet.json"
    path.write_text(json.dumps({"name": "j", "stations": [{"template": "wallbox-ac11", "count": 2}],
                                "arrivals": {"energy_kwh_mean": 10}}))
    s = load_scenario(str(path))
    assert s.chargers == 2 and s.arrivals.energy_kwh_mean == 10
    path.write_text("{")
    with pytest.raises(ScenarioError, match="not valid JSON"):
        load_scenario(str(path))


def test_session_energy_follows_its_distribution_and_never_exceeds_a_battery() -> None:
    cfg = ArrivalConfig(energy_kwh_mean=20.0, energy_kwh_min=2.0, energy_kwh_max=200.0, energy_sigma=0.4)
    rng = random.Random(7)
    wants = []
    for _ in range(2000):
        car = session_ev(rng, cfg)
        want = (car.target_soc_percent - car.initial_soc_percent) / 100 * car.battery_capacity_kwh
        assert 0 <= car.initial_soc_percent < car.target_soc_percent <= 100
        wants.append(want)
    mean = sum(wants) / len(wants)
    assert 17.0 < mean < 21.0  # a few draws are capped by a full battery
    assert max(wants) <= 100.0
    same = session_ev(random.Random(1), None)
    assert same == session_ev(random.Random(1), replace(cfg, energy_kwh_mean=0.0))


def test_other_connectors_of_a_busy_201_evse_are_unavailable() -> None:
    assert connector_statuses("Occupied", 2) == ["Occupied", "Unavailable"]
    assert connector_statuses("Available", 3) == ["Available"] * 3
    assert connector_statuses("Faulted", 2) == ["Faulted", "Faulted"]


@pytest.mark.e2e
async def test_a_template_fleet_boots_with_the_templates_identity_and_connectors(
    csms: CsmsApp, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    (tmp_path / "twin.json").write_text(json.dumps(DUAL_DC))
    fleet = tmp_path / "fleet.toml"
    fleet.write_text("""
name = "templates"
[fleet]
id_prefix = "TPL"
ramp_up_per_s = 50
[arrivals]
first_share = 0
sessions_per_day = 0
[[stations]]
name = "twin16"
template = "twin.json"
count = 1
protocol = "1.6"
[[stations]]
name = "twin201"
template = "twin.json"
count = 1
protocol = "2.0.1"
[[stations]]
template = "pillar-ac22"
count = 1
protocol = "2.0.1"
""")
    scenario = load_scenario(str(fleet))
    stop = asyncio.Event()
    run = asyncio.create_task(run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=scenario, duration_s=0),
                                        stop=stop))
    try:
        async def views() -> dict[str, dict[str, object]] | None:
            got = {c["id"]: c for c in (await api.get("/api/chargers")).json()}
            ready = len(got) == 3 and all(sum(len(e["connectors"]) for e in c["evses"]) >= 2
                                         for c in got.values())
            return got if ready else None

        found = await wait_until(views, timeout=20, what="three template stations with their connectors")
        await asyncio.sleep(0.5)  # the last StatusNotifications
        found = await wait_until(views, timeout=5)
        v16 = (await api.post("/api/chargers/TPL00001/actions/GetConfiguration",
                              json={"key": ["SupportedFeatureProfiles", "ConnectionTimeOut",
                                            "NumberOfConnectors"]})).json()
    finally:
        stop.set()
        report = await asyncio.wait_for(run, 30)
    twin16, twin201, pillar = found["TPL00001"], found["TPL00002"], found["TPL00003"]
    for station in (twin16, twin201):
        assert (station["vendor"], station["model"], station["firmware_version"]) == (
            "Acme Power", "Twin DC60", "7.1.2")
    assert pillar["model"] == "Pillar AC22-2" and pillar["firmware_version"] == "2.4.1"
    shape = {sid: [(e["evse_id"], [c["connector_id"] for c in e["connectors"]]) for e in found[sid]["evses"]]
             for sid in found}
    assert shape["TPL00002"] == [(1, [1, 2]), (2, [1, 2])]  # 2.0.1: EVSEs with two connectors each
    assert shape["TPL00003"] == [(1, [1]), (2, [1])]
    assert shape["TPL00001"] == [(1, [1]), (2, [2]), (3, [3]), (4, [4])]  # 1.6: connectors 1..4
    values = {kv["key"]: kv["value"] for kv in v16["configurationKey"]}
    assert values == {"SupportedFeatureProfiles": "Core,RemoteTrigger", "ConnectionTimeOut": "45",
                      "NumberOfConnectors": "4"}
    assert report.protocol_errors == 0, report.data["errors"]


def test_template_stations_take_the_grids_phase_voltage() -> None:
    s = parse_scenario({"grid": {"phase_voltage_v": 240},
                        "stations": [{"template": "hpc-dc150", "count": 1, "protocol": "2.0.1"}]}, "f.toml")
    (spec,) = s.charger_specs()
    assert {e.grid_voltage_v for e in spec.evses} == {240.0}
    assert balancer_topology(s)["evses"] == []  # no grid node hosts it
