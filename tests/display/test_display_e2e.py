"""Display messages and monitoring over real sockets: the simulator's 2.0.1 charger keeps the
messages and monitors it is given, reports them back, and its monitors' NotifyEvent messages
land in the station's events; a 1.6 charger is told the version has none."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from csms.app import CsmsApp
from ocppj.versions import OcppVersion
from tests.simulators.sim_support import TAG, make_charger, register_tags, running, wait_until


async def connected(csms: CsmsApp, station_id: str) -> None:
    await wait_until(lambda: csms.control.protocol_of(station_id) is not None, what=f"{station_id} connected")


async def events(api: httpx.AsyncClient, station_id: str, kind: str) -> list[dict[str, Any]]:
    r = await api.get(f"/api/chargers/{station_id}/events", params={"type": kind})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_display_messages_are_set_reported_and_cleared(
    ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = "DISP-201"
    async with running(make_charger(ops_csms.ocpp_url, OcppVersion.V201, sid, arrivals=None)):
        await connected(ops_csms, sid)
        url = f"/api/chargers/{sid}/display-messages"
        for i in range(1, 7):
            r = await ops_api.post(url, json={"id": i, "priority": "InFront", "content": f"Welcome {i}",
                                              "language": "en", "state": "Idle"})
            assert r.status_code == 200 and r.json()["status"] == "Accepted", r.text
        r = await ops_api.post(url, json={"id": 9, "content": "<b>hi</b>", "format": "HTML"})
        assert r.json()["status"] == "NotSupportedMessageFormat"
        r = await ops_api.post(url, json={"id": 10, "content": "for a session", "transaction_id": "nope"})
        assert r.json()["status"] == "UnknownTransaction"

        got = (await ops_api.get(url)).json()
        assert got["status"] == "Accepted" and got["complete"] is True  # over two reports (tbc)
        assert sorted(m["id"] for m in got["messages"]) == [1, 2, 3, 4, 5, 6]
        first = next(m for m in got["messages"] if m["id"] == 1)
        assert first["message"] == {"format": "UTF8", "language": "en", "content": "Welcome 1"}
        assert first["priority"] == "InFront" and first["state"] == "Idle"
        some = (await ops_api.get(url, params={"id": [2, 3]})).json()
        assert sorted(m["id"] for m in some["messages"]) == [2, 3]

        assert (await ops_api.delete(f"{url}/2")).json()["status"] == "Accepted"
        assert (await ops_api.delete(f"{url}/2")).json()["status"] == "Unknown"
        none = (await ops_api.get(url, params={"id": [2]})).json()
        assert none["status"] == "Unknown" and none["messages"] == [] and none["complete"] is True

        async def reported() -> bool:
            return any(e["data"]["requestId"] == got["request_id"]
                       for e in await events(ops_api, sid, "NotifyDisplayMessages"))
        await wait_until(reported, what="NotifyDisplayMessages in the events")

        bad = await ops_api.post(url, json={"id": 11, "content": "héllo", "format": "ASCII"})
        assert bad.status_code == 400 and bad.json()["error"] == "invalid_display_message"
        bad = await ops_api.post(url, json={"id": 11, "content": "x", "start": "2026-12-08T00:00:00Z",
                                            "end": "2026-12-07T00:00:00Z"})
        assert bad.status_code == 400 and "end" in bad.json()["detail"]


async def test_monitors_make_the_station_send_events(ops_csms: CsmsApp, ops_api: httpx.AsyncClient) -> None:
    sid = "MON-201"
    async with running(make_charger(ops_csms.ocpp_url, OcppVersion.V201, sid, arrivals=None)):
        await connected(ops_csms, sid)
        r = await ops_api.post(f"/api/chargers/{sid}/monitors", json={"monitors": [
            {"component": "ChargingStation", "variable": "Temperature", "type": "Periodic", "value": 1,
             "severity": 8},
            {"component": "ChargingStation", "variable": "Temperature", "type": "LowerThreshold", "value": 30,
             "severity": 2},
            {"component": "Pump", "variable": "Pressure", "type": "Delta", "value": 1},
            {"component": "EVSE", "evse_id": 1, "variable": "Humidity", "type": "Delta", "value": 1},
        ]})
        assert r.status_code == 200, r.text
        results = r.json()["results"]
        assert [x["status"] for x in results] == [
            "Accepted", "Accepted", "UnknownComponent", "UnknownVariable"]
        periodic, threshold = results[0]["id"], results[1]["id"]
        assert periodic is not None and threshold is not None and periodic != threshold

        async def triggers() -> set[tuple[int, str]]:
            return {(d["variableMonitoringId"], d["trigger"])
                    for e in await events(ops_api, sid, "NotifyEvent") for d in e["data"]["eventData"]}

        await wait_until(lambda: _has(triggers, {(periodic, "Periodic"), (threshold, "Alerting")}),
                         timeout=15, what="NotifyEvent of both monitors in the events")
        [sample] = [d for e in await events(ops_api, sid, "NotifyEvent") for d in e["data"]["eventData"]
                    if d["variableMonitoringId"] == threshold]
        assert sample["actualValue"] == "20" and sample["component"] == {"name": "ChargingStation"}

        r = await ops_api.delete(f"/api/chargers/{sid}/monitors/{periodic}")
        assert r.json()["status"] == "Accepted"
        r = await ops_api.delete(f"/api/chargers/{sid}/monitors/{periodic}")
        assert r.json()["status"] == "NotFound"
        r = await ops_api.post(f"/api/chargers/{sid}/monitoring-level", json={"severity": 5})
        assert r.json()["status"] == "Accepted"
        r = await ops_api.post(f"/api/chargers/{sid}/monitoring-level", json={"severity": 12})
        assert r.status_code == 400 and r.json()["error"] == "invalid_monitor"
        r = await ops_api.post(f"/api/chargers/{sid}/monitoring-base", json={"base": "HardWiredOnly"})
        assert r.json()["status"] == "Accepted"
        r = await ops_api.delete(f"/api/chargers/{sid}/monitors/{threshold}")
        assert r.json()["status"] == "NotFound"  # the base removed the custom monitors
        r = await ops_api.post(f"/api/chargers/{sid}/monitors", json={"monitors": [
            {"component": "ChargingStation", "variable": "Power", "type": "Periodic", "value": 0}]})
        assert r.status_code == 400 and "monitors[0].value" in r.json()["detail"]
        kept = (await ops_api.get(f"/api/chargers/{sid}/operator-commands")).json()["items"]
        assert [o["action"] for o in kept][:2] == ["ClearVariableMonitoring", "SetMonitoringBase"]


async def _has(probe: Any, wanted: set[tuple[int, str]]) -> bool:
    return wanted <= await probe()


async def test_a_16_station_has_no_display_messages_or_monitors(
    ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = "DISP-16"
    async with running(make_charger(ops_csms.ocpp_url, OcppVersion.V16, sid, arrivals=None)):
        await connected(ops_csms, sid)
        for method, path, body in [
            ("POST", "display-messages", {"id": 1, "content": "hi"}), ("GET", "display-messages", None),
            ("DELETE", "display-messages/1", None), ("DELETE", "monitors/1", None),
            ("POST", "monitors", {"monitors": [{"component": "ChargingStation", "variable": "Power",
                                                "type": "Delta", "value": 5}]}),
            ("POST", "monitoring-base", {"base": "All"}),
        ]:
            r = await ops_api.request(method, f"/api/chargers/{sid}/{path}", json=body)
            assert r.status_code == 409, (path, r.text)
            assert r.json()["error"] == "unsupported_version" and "2.0.1" in r.json()["detail"]
    r = await ops_api.get("/api/chargers/GHOST/display-messages")
    assert r.status_code == 404 and r.json()["error"] == "not_registered"


async def test_a_power_threshold_reports_when_a_car_starts_charging(
    ops_csms: CsmsApp, ops_api: httpx.AsyncClient
) -> None:
    sid = "MON-LOAD"
    await register_tags(ops_api, [TAG])
    charger = make_charger(ops_csms.ocpp_url, OcppVersion.V201, sid, arrivals=None)
    async with running(charger):
        await connected(ops_csms, sid)
        r = await ops_api.post(f"/api/chargers/{sid}/monitors", json={"monitors": [
            {"component": "EVSE", "evse_id": 1, "variable": "Power", "type": "UpperThreshold", "value": 1000,
             "severity": 1}]})
        [result] = r.json()["results"]
        assert result["status"] == "Accepted"
        await asyncio.sleep(1.2)  # idle: 0 W, nothing to report
        assert await events(ops_api, sid, "NotifyEvent") == []
        r = await ops_api.post(f"/api/chargers/{sid}/actions/RequestStartTransaction",
                               json={"idToken": {"idToken": TAG, "type": "ISO14443"}, "remoteStartId": 1,
                                     "evseId": 1})
        assert r.json()["status"] == "Accepted", r.text

        async def alerting() -> list[dict[str, Any]]:
            return [d for e in await events(ops_api, sid, "NotifyEvent") for d in e["data"]["eventData"]
                    if d["variableMonitoringId"] == result["id"]]

        [event] = await wait_until(alerting, timeout=15, what="the power threshold's NotifyEvent")
        assert event["trigger"] == "Alerting" and float(event["actualValue"]) > 1000
        assert event["component"] == {"name": "EVSE", "evse": {"id": 1}}
