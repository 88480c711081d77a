"""Station events and signed meter values over real sockets: independent ``ocpp``-library stations
send notifications and signed readings; the events and transactions API give them back."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms.app import CsmsApp, default_plugins, running
from tests.conftest import make_settings
from tests.e2e.stations import Station16, Station201, connected

SIGNED_16 = "<?xml version='1.0'?><signedMeterValue><publicKey>AB</publicKey></signedMeterValue>"
OCMF = "OCMF|{\"FV\":\"1.0\",\"RD\":[{\"RV\":1.234,\"RU\":\"kWh\"}]}|{\"SD\":\"3045\"}"


def ts(minutes: int = 0) -> str:
    base = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Wait for ``check`` (station events are written behind, about once a second)."""
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.2)


async def events(api: httpx.AsyncClient, station: str, **params: Any) -> list[dict[str, Any]]:
    r = await api.get(f"/api/chargers/{station}/events", params=params)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_16_notifications_and_signed_stop_data_come_back(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    async with connected(Station16, csms.ocpp_url, "CP-EV16", "ocpp1.6") as cp:
        await cp.call(call16.BootNotification(charge_point_vendor="Acme", charge_point_model="AC22"),
                      suppress=False)
        await cp.call(call16.FirmwareStatusNotification(status="Installed"), suppress=False)
        await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Preparing",
                                                timestamp=ts()), suppress=False)
        start = await cp.call(call16.StartTransaction(connector_id=1, id_tag="T1", meter_start=1000,
                                                      timestamp=ts(1)), suppress=False)
        tx_id = start.transaction_id
        await cp.call(call16.MeterValues(connector_id=1, transaction_id=tx_id, meter_value=[{
            "timestamp": ts(2), "sampled_value": [
                {"value": "1500", "context": "Sample.Periodic"},
                {"value": "AAECAw==", "format": "SignedData", "context": "Sample.Periodic"},
            ]}]), suppress=False)
        await cp.call(call16.StopTransaction(meter_stop=2000, timestamp=ts(3), transaction_id=tx_id,
                                             transaction_data=[{"timestamp": ts(3), "sampled_value": [
                                                 {"value": "2000", "context": "Transaction.End"},
                                                 {"value": SIGNED_16, "format": "SignedData",
                                                  "context": "Transaction.End",
                                                  "measurand": "Energy.Active.Import.Register"},
                                             ]}]), suppress=False)
        await cp.call(call16.StopTransaction(meter_stop=500, timestamp=ts(4), transaction_id=987654,
                                             transaction_data=[{"timestamp": ts(4), "sampled_value": [
                                                 {"value": "ORPHAN", "format": "SignedData"}]}]),
                      suppress=False)

    async def kept() -> bool:
        return {"FirmwareStatusNotification", "StatusNotification", "BootNotification"} <= {
            e["type"] for e in await events(api, "CP-EV16")}

    await eventually(kept)
    [firmware] = await events(api, "CP-EV16", type="FirmwareStatusNotification")
    assert firmware["data"] == {"status": "Installed"} and firmware["station_time"] is None
    [status] = await events(api, "CP-EV16", type="StatusNotification")
    assert status["data"]["status"] == "Preparing" and status["station_time"] == "2026-11-29T08:00:00Z"
    assert status["id"] < firmware["id"] or status["at"] >= firmware["at"]

    async def both_signed() -> bool:
        r = await api.get(f"/api/transactions/CP-EV16/{tx_id}")
        return r.status_code == 200 and len(r.json()["signed_meter_values"]) == 2

    await eventually(both_signed)  # the MeterValues one is written behind
    tx = (await api.get(f"/api/transactions/CP-EV16/{tx_id}")).json()
    assert tx["id"] == tx_id and tx["meter_stop_wh"] == 2000 and tx["energy_wh"] == 1000
    by_context = {v["context"]: v for v in tx["signed_meter_values"]}
    assert by_context["Transaction.End"]["data"] == SIGNED_16
    assert by_context["Transaction.End"]["encoding"] == "SignedData"
    assert by_context["Transaction.End"]["station_time"] == "2026-11-29T08:03:00Z"
    assert by_context["Sample.Periodic"]["data"] == "AAECAw=="
    # a stop of a transaction the CSMS never saw is kept under its own id, with its signed data
    [orphan] = [t for t in (await api.get("/api/transactions", params={"charger_id": "CP-EV16"})).json()
                if "unknown_transaction" in t["flags"]]
    kept_orphan = (await api.get(f"/api/transactions/CP-EV16/{orphan['id']}")).json()
    assert [v["data"] for v in kept_orphan["signed_meter_values"]] == ["ORPHAN"]
    metrics = (await api.get("/metrics")).text
    assert 'csms_station_events_total{action="FirmwareStatusNotification"} 1.0' in metrics
    assert "csms_station_events_dropped_total 0.0" in metrics


async def test_201_notify_event_charging_limit_and_signed_transaction_event_come_back(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station201, csms.ocpp_url, "CP-EV201", "ocpp2.0.1") as cp:
        await cp.call(call201.BootNotification(charging_station={"vendor_name": "Acme", "model": "DC50"},
                                               reason="PowerUp"), suppress=False)
        await cp.call(call201.NotifyEvent(generated_at=ts(5), seq_no=0, event_data=[{
            "event_id": 1, "timestamp": ts(5), "trigger": "Alerting", "actual_value": "Faulted",
            "event_notification_type": "HardWiredNotification", "component": {"name": "Connector"},
            "variable": {"name": "Problem"},
        }]), suppress=False)
        await cp.call(call201.NotifyChargingLimit(charging_limit={"charging_limit_source": "EMS"}, evse_id=1),
                      suppress=False)
        await cp.call(call201.TransactionEvent(
            event_type="Started", timestamp=ts(6), trigger_reason="CablePluggedIn", seq_no=0,
            transaction_info={"transaction_id": "TX-SIGNED"}, evse={"id": 1, "connector_id": 1},
            meter_value=[{"timestamp": ts(6), "sampled_value": [{
                "value": 1.234, "context": "Transaction.Begin", "unit_of_measure": {"unit": "kWh"},
                "signed_meter_value": {"signed_meter_data": OCMF, "signing_method": "ECDSA-secp256r1-SHA256",
                                       "encoding_method": "OCMF", "public_key": "MFkwEwYHKoZI"},
            }]}],
        ), suppress=False)
        # kept before the answer: no waiting for a flush
        tx = (await api.get("/api/transactions/CP-EV201/TX-SIGNED")).json()
        assert tx["meter_start_wh"] == 1234.0
        assert tx["signed_meter_values"] == [{
            "at": tx["signed_meter_values"][0]["at"], "station_time": "2026-11-29T08:06:00Z",
            "context": "Transaction.Begin", "measurand": None, "encoding": "OCMF",
            "signing_method": "ECDSA-secp256r1-SHA256", "public_key": "MFkwEwYHKoZI", "data": OCMF,
        }]

    async def kept() -> bool:
        return {"NotifyEvent", "NotifyChargingLimit"} <= {e["type"] for e in await events(api, "CP-EV201")}

    await eventually(kept)
    [notify] = await events(api, "CP-EV201", type="NotifyEvent")
    assert notify["station_time"] == "2026-11-29T08:05:00Z"
    assert notify["data"]["eventData"][0]["actualValue"] == "Faulted"  # as the station sent it
    [limit] = await events(api, "CP-EV201", type="NotifyChargingLimit")
    assert limit["data"] == {"chargingLimit": {"chargingLimitSource": "EMS"}, "evseId": 1}
    assert (await api.get("/api/transactions/CP-EV201/NOPE")).status_code == 404


async def test_paging_with_the_cursor_returns_every_event_exactly_once_while_more_arrive(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station16, csms.ocpp_url, "CP-PAGE", "ocpp1.6") as cp:
        async def status(n: int) -> None:
            await cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available",
                                                    info=f"n{n}", timestamp=ts(n)), suppress=False)

        for n in range(23):
            await status(n)

        async def all_kept() -> bool:
            return len(await events(api, "CP-PAGE", type="StatusNotification", limit=1000)) == 23

        await eventually(all_kept)
        seen: list[str] = []
        cursor: str | None = None
        pages = 0
        while True:
            params: dict[str, Any] = {"type": "StatusNotification", "limit": 5}
            if cursor is not None:
                params["cursor"] = cursor
            body = (await api.get("/api/chargers/CP-PAGE/events", params=params)).json()
            seen.extend(e["data"]["info"] for e in body["items"])
            pages += 1
            await status(100 + pages)  # newer events arrive while the operator pages
            assert csms.service is not None
            await csms.service.flush()
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"n{n}" for n in range(22, -1, -1)] and pages == 5
    since = await events(api, "CP-PAGE", type="StatusNotification", since="2999-01-01T00:00:00Z")
    assert since == []


async def test_bad_queries_get_clear_answers(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    r = await api.get("/api/chargers/NOBODY/events")
    assert r.status_code == 404 and "charger 'NOBODY' is not registered" in r.text
    assert (await api.get("/api/transactions/NOBODY/1")).status_code == 404
    assert (await api.put("/api/chargers/CP-Q", json={})).status_code in (200, 201)
    for params in ({"limit": 0}, {"limit": 1001}, {"since": "yesterday"}, {"cursor": "abc"}):
        r = await api.get("/api/chargers/CP-Q/events", params=params)
        assert r.status_code == 400, (params, r.text)
        assert r.json()["error"] in ("invalid_payload", "bad_request"), (params, r.text)
    assert (await api.get("/api/chargers/CP-Q/events")).json() == {"items": [], "next_cursor": None}


async def test_retention_prunes_events_older_than_the_setting(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, \
            connected(Station16, app.ocpp_url, "CP-OLD", "ocpp1.6") as cp:
        await cp.call(call16.FirmwareStatusNotification(status="Downloaded"), suppress=False)
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        assert [e["data"] for e in await events(api, "CP-OLD")] == [{"status": "Downloaded"}]  # 90 days
    await asyncio.sleep(1.0)
    # 0.00001 days is 0.864 s: the event above is older; the service prunes at start, then hourly
    async with running(make_settings(tmp_path, events={"retention_days": 0.00001})) as app, \
            httpx.AsyncClient(base_url=app.api_url) as api:
        async def pruned() -> bool:
            return await events(api, "CP-OLD") == []

        await eventually(pruned, 5)
        async with connected(Station16, app.ocpp_url, "CP-OLD", "ocpp1.6") as cp:
            await cp.call(call16.FirmwareStatusNotification(status="Installed"), suppress=False)

        async def new_kept() -> bool:
            return [e["data"] for e in await events(api, "CP-OLD")] == [{"status": "Installed"}]

        await eventually(new_kept)


class LimitedStation(Station201):
    """A 2.0.1 station that accepts charging profiles and records each EVSE's latest limit."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits: dict[int, float] = {}

    @on("SetChargingProfile")
    async def on_set_profile(self, evse_id: int, charging_profile: dict[str, Any]) -> Any:
        period = charging_profile["charging_schedule"][0]["charging_schedule_period"][0]
        if charging_profile.get("transaction_id") is not None:
            self.limits[evse_id] = float(period["limit"])
        return result201.SetChargingProfile(status="Accepted")


async def test_an_evs_maximum_current_caps_its_allocation_until_the_transaction_ends(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, balancer={
        "enabled": True, "tick_s": 0.5, "min_interval_per_station_s": 0.0,
        "nodes": [{"id": "site", "limit_a": 32.0}],
        "evses": [{"station_id": s, "evse_id": 1, "node": "site", "max_a": 32.0} for s in ("EV-A", "EV-B")],
    })
    async with running(settings, plugins=default_plugins(settings)) as app, \
            connected(LimitedStation, app.ocpp_url, "EV-A", "ocpp2.0.1") as a, \
            connected(LimitedStation, app.ocpp_url, "EV-B", "ocpp2.0.1") as b:
        stations = {"EV-A": a, "EV-B": b}
        for cp in stations.values():
            await cp.call(call201.BootNotification(charging_station={"vendor_name": "V", "model": "M"},
                                                   reason="PowerUp"), suppress=False)

        async def begin(sid: str, tx: str) -> None:
            await stations[sid].call(call201.TransactionEvent(
                event_type="Started", timestamp=ts(), trigger_reason="CablePluggedIn", seq_no=0,
                transaction_info={"transaction_id": tx}, evse={"id": 1, "connector_id": 1},
            ), suppress=False)

        async def limits_are(expected: dict[str, float]) -> None:
            async def reached() -> bool:
                return {sid: cp.limits.get(1) for sid, cp in stations.items()} == expected
            await eventually(reached)

        await begin("EV-A", "A-1")
        await begin("EV-B", "B-1")
        await limits_are({"EV-A": 16.0, "EV-B": 16.0})
        needs = await a.call(call201.NotifyEVChargingNeeds(evse_id=1, charging_needs={
            "requested_energy_transfer": "AC_three_phase", "departure_time": ts(120),
            "ac_charging_parameters": {"energy_amount": 20000, "ev_min_current": 6, "ev_max_current": 10,
                                       "ev_max_voltage": 400},
        }), suppress=False)
        assert needs.status == "Accepted"
        await limits_are({"EV-A": 10.0, "EV-B": 22.0})
        await a.call(call201.TransactionEvent(
            event_type="Ended", timestamp=ts(1), trigger_reason="EVCommunicationLost", seq_no=1,
            transaction_info={"transaction_id": "A-1", "stopped_reason": "EVDisconnected"},
        ), suppress=False)
        await limits_are({"EV-A": 10.0, "EV-B": 32.0})
        await begin("EV-A", "A-2")  # a new EV: the old one's needs are gone
        await limits_are({"EV-A": 16.0, "EV-B": 16.0})
