"""Desired configuration against the real CSMS and the real simulator over WebSockets, both versions:
applied at boot (read back from the station), changes sent to connected members, every answer
kept (Rejected, NotSupported, RebootRequired included), and drift after a manual change."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.app import CsmsApp, running
from csms.desired_config.plugin import desired_config_plugin
from ocppj.versions import OcppVersion
from tests.conftest import make_settings
from tests.desired_config.stations import action, charger, results, sid, wait_for

pytestmark = pytest.mark.e2e

VERSIONS = [OcppVersion.V16, OcppVersion.V201]
HB16, PING16 = "HeartbeatInterval", "WebSocketPingInterval"
HB201 = "OCPPCommCtrlr/HeartbeatInterval/Actual"
PING201 = "OCPPCommCtrlr/WebSocketPingInterval/Actual"
READONLY201 = "SmartChargingCtrlr/ProfileStackLevel/Actual"
UNKNOWN201 = "NoSuchCtrlr/Thing/Actual"


def desired(heartbeat: str) -> dict[str, Any]:
    """One set for both versions: a plain value, one needing a reboot, a read-only and an unknown key."""
    return {
        "ocpp1.6": {HB16: heartbeat, PING16: "30", "NumberOfConnectors": "5", "NoSuchKey": "1"},
        "ocpp2.0.1": [
            {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": heartbeat},
            {"component": "OCPPCommCtrlr", "variable": "WebSocketPingInterval", "value": "30"},
            {"component": "SmartChargingCtrlr", "variable": "ProfileStackLevel", "value": "5"},
            {"component": "NoSuchCtrlr", "variable": "Thing", "value": "1"},
        ],
        "priority": 0,
    }


def keys(version: OcppVersion) -> tuple[str, str, str, str]:
    """(heartbeat, reboot-required, read-only, unknown) keys of ``version``."""
    if version is OcppVersion.V16:
        return HB16, PING16, "NumberOfConnectors", "NoSuchKey"
    return HB201, PING201, READONLY201, UNKNOWN201


async def read_heartbeat(api: httpx.AsyncClient, station_id: str, version: OcppVersion) -> str:
    """The station's heartbeat interval, read with a raw Get* call."""
    if version is OcppVersion.V16:
        got = await action(api, station_id, "GetConfiguration", {"key": [HB16]})
        return str(got["configurationKey"][0]["value"])
    got = await action(api, station_id, "GetVariables", {"getVariableData": [
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]})
    return str(got["getVariableResult"][0]["attributeValue"])


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path), plugins=[desired_config_plugin]) as csms:
        yield csms


@pytest.fixture
async def api(app: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=15) as client:
        yield client


@pytest.mark.parametrize("version", VERSIONS)
async def test_set_is_applied_at_boot_changes_reach_members_and_drift_shows_manual_changes(
    app: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    station = sid(version, "CFG")
    hb, ping, readonly, unknown = keys(version)
    r = await api.put("/api/groups/depot/desired-config", json=desired("300"))
    assert r.status_code == 201, r.text
    assert r.json()["applying_to"] == 0  # nobody connected yet
    assert app.store is not None
    await app.store.sites.add_to_group("depot", [station])

    async with charger(app.ocpp_url, version, station) as c:
        booted = await wait_for(lambda: _all_answered(api, station, 4), "the boot's answers")
        assert {k: v["status"] for k, v in booted.items()} == {
            hb: "Accepted", ping: "RebootRequired", readonly: "Rejected",
            unknown: "NotSupported" if version is OcppVersion.V16 else "UnknownComponent",
        }
        assert booted[hb]["value"] == "300" and booted[hb]["at"]
        assert c.settings.heartbeat_interval_s == 300
        assert await read_heartbeat(api, station, version) == "300"

        drift = (await api.get(f"/api/chargers/{station}/config-drift")).json()
        by_key = {e["key"]: e for e in drift["keys"]}
        assert drift["protocol"] == version.value
        assert by_key[hb]["status"] == "in_sync" and by_key[ping]["status"] == "in_sync"
        assert by_key[readonly] | {"last_result": None} == {
            "key": readonly, "desired": "5", "actual": "10" if version is OcppVersion.V201 else "1",
            "status": "drifted", "source": "depot", "last_result": None}
        assert by_key[unknown]["status"] == "not_supported"
        assert by_key[hb]["last_result"]["status"] == "Accepted"

        # a change reaches the connected member; what it already applied is not sent again
        r = await api.put("/api/groups/depot/desired-config", json=desired("600"))
        assert r.status_code == 200 and r.json()["applying_to"] == 1
        changed = await wait_for(
            lambda: _value_is(api, station, hb, "600"), "the changed heartbeat's answer")
        assert changed[hb]["status"] == "Accepted"
        assert changed[ping]["at"] == booted[ping]["at"]  # RebootRequired counts as applied
        assert changed[readonly]["at"] != booted[readonly]["at"]  # not applied: tried again
        assert await read_heartbeat(api, station, version) == "600"

        # someone changes it by hand: the drift report shows it, the kept results do not
        if version is OcppVersion.V16:
            await action(api, station, "ChangeConfiguration", {"key": HB16, "value": "900"})
        else:
            await action(api, station, "SetVariables", {"setVariableData": [{
                "component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                "attributeValue": "900"}]})
        drift = (await api.get(f"/api/chargers/{station}/config-drift")).json()
        entry = next(e for e in drift["keys"] if e["key"] == hb)
        assert (entry["desired"], entry["actual"], entry["status"]) == ("600", "900", "drifted")
        assert entry["last_result"]["value"] == "600"

        status = (await api.get("/api/groups/depot/config-status")).json()
        assert status == [{
            "charger_id": station, "protocol": version.value, "connected": True, "desired": 4,
            "applied": 1, "reboot_required": 1, "rejected": 1, "not_supported": 1, "failed": 0, "pending": 0,
        }]


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_change_made_while_offline_reaches_the_station_when_it_reconnects_without_booting(
    app: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    station = sid(version, "RECON")
    hb = keys(version)[0]
    assert app.store is not None
    await app.store.sites.add_to_group("field", [station])
    one = {"ocpp1.6": {HB16: "300"}, "ocpp2.0.1": desired("300")["ocpp2.0.1"][:1]}
    assert (await api.put("/api/groups/field/desired-config", json=one)).status_code == 201
    async with charger(app.ocpp_url, version, station) as c:
        await wait_for(lambda: _value_is(api, station, hb, "300"), "the boot's answer")
        c.inject("offline")
        await wait_for(lambda: _connected(api, station, False), "the CSMS to see the station gone")
        two = {"ocpp1.6": {HB16: "450"}, "ocpp2.0.1": desired("450")["ocpp2.0.1"][:1]}
        r = await api.put("/api/groups/field/desired-config", json=two)
        assert r.json()["applying_to"] == 0
        await wait_for(lambda: _value_is(api, station, hb, "450"), "the answer after the reconnect")
        assert c.settings.heartbeat_interval_s == 450
        assert c.recorder.counters["boots_accepted"] == 1  # a reconnect, not a reboot


async def test_precedence_default_then_groups_by_priority_and_reboot_resends(
    app: CsmsApp, api: httpx.AsyncClient
) -> None:
    station = "PREC-16"
    assert app.store is not None
    await app.store.sites.add_to_group("low", [station])
    await app.store.sites.add_to_group("high", [station])
    put = [
        ("/api/desired-config/default", {"ocpp1.6": {"HeartbeatInterval": "100", "ConnectionTimeOut": "45"}}),
        ("/api/groups/low/desired-config", {"ocpp1.6": {"HeartbeatInterval": "200",
                                                        "TransactionMessageAttempts": "4"}, "priority": 1}),
        ("/api/groups/high/desired-config", {"ocpp1.6": {"TransactionMessageAttempts": "5"}, "priority": 7}),
    ]
    for path, body in put:
        assert (await api.put(path, json=body)).status_code == 201
    async with charger(app.ocpp_url, OcppVersion.V16, station) as c:
        kept = await wait_for(lambda: _all_answered(api, station, 3), "the boot's answers")
        assert {k: v["value"] for k, v in kept.items()} == {
            "HeartbeatInterval": "200", "ConnectionTimeOut": "45", "TransactionMessageAttempts": "5"}
        got = await action(api, station, "GetConfiguration", {"key": ["ConnectionTimeOut"]})
        assert got["configurationKey"][0]["value"] == "45"
        drift = (await api.get(f"/api/chargers/{station}/config-drift")).json()
        assert {e["key"]: (e["source"], e["status"]) for e in drift["keys"]} == {
            "ConnectionTimeOut": ("*", "in_sync"), "HeartbeatInterval": ("low", "in_sync"),
            "TransactionMessageAttempts": ("high", "in_sync")}

        # a reboot sends the whole set again, applied or not
        before = kept["HeartbeatInterval"]["at"]
        await action(api, station, "Reset", {"type": "Soft"})
        await wait_for(lambda: _sent_after(api, station, "HeartbeatInterval", before), "the resend at boot",
                       timeout=20)
        assert c.settings.heartbeat_interval_s == 200

    listed = (await api.get("/api/desired-config", params={"limit": 2})).json()
    assert [s["group"] for s in listed] == ["*", "high"]
    assert (await api.delete("/api/groups/high/desired-config")).status_code == 204
    assert (await api.get("/api/groups/high/desired-config")).status_code == 404


async def _all_answered(api: httpx.AsyncClient, station: str, n: int) -> dict[str, Any] | None:
    r = await api.get(f"/api/chargers/{station}/config-results")
    if r.status_code != 200:
        return None
    got: dict[str, Any] = r.json()
    return got if len(got) >= n else None


async def _connected(api: httpx.AsyncClient, station: str, connected: bool) -> bool:
    return bool((await api.get(f"/api/chargers/{station}")).json()["connected"] is connected)


async def _value_is(api: httpx.AsyncClient, station: str, key: str, value: str) -> dict[str, Any] | None:
    got = await _all_answered(api, station, 1)  # None until the station is registered
    return got if got and key in got and got[key]["value"] == value else None


async def _sent_after(api: httpx.AsyncClient, station: str, key: str, before: str) -> bool:
    return bool((await results(api, station))[key]["at"] > before)
