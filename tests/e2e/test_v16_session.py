"""A full OCPP 1.6J session from an independent, strictly validating station implementation."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx
from ocpp.v16 import call

from csms.app import CsmsApp
from tests.e2e.stations import Station16, connected
from tests.gateway.relay import csms_direct_or_via_gateway  # noqa: F401  (csms: direct and via a gateway)


def ts(minutes: int = 0) -> str:
    base = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)
    return (base + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")


async def test_full_16_session_is_answered_persisted_and_visible(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    assert (await api.post("/api/id-tags", json={"id_tag": "GOOD1", "status": "Accepted"})).status_code == 201
    async with connected(Station16, csms.ocpp_url, "CP16", "ocpp1.6") as cp:
        boot = await cp.call(
            call.BootNotification(
                charge_point_vendor="Acme",
                charge_point_model="AC22",
                charge_point_serial_number="SN-1",
                firmware_version="1.2.3",
            ),
            suppress=False,
        )
        assert boot.status == "Accepted" and boot.interval > 0
        hb = await cp.call(call.Heartbeat(), suppress=False)
        assert hb.current_time.endswith("Z")
        await cp.call(
            call.StatusNotification(connector_id=1, error_code="NoError", status="Preparing", timestamp=ts()),
            suppress=False,
        )
        known = await cp.call(call.Authorize(id_tag="GOOD1"), suppress=False)
        unknown = await cp.call(call.Authorize(id_tag="NOPE"), suppress=False)
        assert known.id_tag_info["status"] == "Accepted"
        assert unknown.id_tag_info["status"] == "Invalid"

        start = await cp.call(
            call.StartTransaction(connector_id=1, id_tag="GOOD1", meter_start=12_000, timestamp=ts(1)),
            suppress=False,
        )
        tx_id = start.transaction_id
        assert start.id_tag_info["status"] == "Accepted"
        await cp.call(
            call.MeterValues(
                connector_id=1,
                transaction_id=tx_id,
                meter_value=[
                    {
                        "timestamp": ts(2),
                        "sampled_value": [
                            {"value": "12.5", "measurand": "Energy.Active.Import.Register", "unit": "kWh"},
                            {"value": "7.2", "measurand": "Power.Active.Import", "unit": "kW"},
                            {"value": "31.4", "measurand": "Current.Import", "phase": "L1", "unit": "A"},
                            {"value": "55", "measurand": "SoC", "unit": "Percent"},
                        ],
                    }
                ],
            ),
            suppress=False,
        )

        charger = (await api.get("/api/chargers/CP16")).json()
        assert charger["connected"] is True and charger["protocol"] == "ocpp1.6"
        assert (
            charger["vendor"],
            charger["model"],
            charger["serial_number"],
            charger["firmware_version"],
        ) == ("Acme", "AC22", "SN-1", "1.2.3")
        evse = charger["evses"][0]
        assert evse["connectors"][0]["status"] == "Preparing"
        assert evse["power_w"] == 7200.0 and evse["energy_register_wh"] == 12_500.0
        active = (await api.get("/api/transactions", params={"charger_id": "CP16", "active": True})).json()
        assert [t["id"] for t in active] == [tx_id] and active[0]["energy_wh"] == 500.0

        stop = call.StopTransaction(
            meter_stop=19_750, timestamp=ts(30), transaction_id=tx_id, reason="EVDisconnected", id_tag="GOOD1"
        )
        first = await cp.call(stop, suppress=False)
        again = await cp.call(stop, suppress=False)  # a retry after a lost reply
        assert first.id_tag_info["status"] == again.id_tag_info["status"] == "Accepted"

    txs = (await api.get("/api/transactions", params={"charger_id": "CP16"})).json()
    assert len(txs) == 1
    tx = txs[0]
    assert tx["id"] == tx_id and tx["connector_id"] == 1 and tx["id_tag"] == "GOOD1"
    assert tx["meter_start_wh"] == 12_000 and tx["meter_stop_wh"] == 19_750
    assert tx["energy_wh"] == 19_750 - 12_000
    assert tx["stop_reason"] == "EVDisconnected" and tx["stopped_at"] is not None
    await asyncio.sleep(0)
    assert (await api.get("/api/chargers/CP16")).json()["connected"] is False


async def test_retried_start_returns_the_same_transaction(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    async with connected(Station16, csms.ocpp_url, "CP16R", "ocpp1.6") as cp:
        req = call.StartTransaction(connector_id=2, id_tag="T", meter_start=0, timestamp=ts())
        a = await cp.call(req, suppress=False)
        b = await cp.call(req, suppress=False)  # same payload, new message id
        assert a.transaction_id == b.transaction_id
    assert len((await api.get("/api/transactions", params={"charger_id": "CP16R"})).json()) == 1


async def test_stop_for_unknown_transaction_is_acknowledged_and_kept(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station16, csms.ocpp_url, "CP16U", "ocpp1.6") as cp:
        res = await cp.call(
            call.StopTransaction(meter_stop=500, timestamp=ts(), transaction_id=-1), suppress=False
        )
        assert res is not None
    txs = (await api.get("/api/transactions", params={"charger_id": "CP16U"})).json()
    assert len(txs) == 1 and "unknown_transaction" in txs[0]["flags"]
    assert txs[0]["meter_stop_wh"] == 500


async def test_csms_initiated_calls_reach_the_16_station(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    async with connected(Station16, csms.ocpp_url, "CP16C", "ocpp1.6") as cp:
        await cp.call(call.BootNotification(charge_point_vendor="V", charge_point_model="M"), suppress=False)
        r = await api.post("/api/chargers/CP16C/actions/Reset", json={"type": "Hard"})
        assert r.status_code == 200 and r.json() == {"status": "Accepted"}
        r = await api.post(
            "/api/chargers/CP16C/actions/GetConfiguration", json={"key": ["HeartbeatInterval"]}
        )
        assert r.json()["configurationKey"][0]["value"] == "300"
        r = await api.post("/api/chargers/CP16C/actions/Reset", json={"type": "Sideways"})
        assert r.status_code == 400 and "type" in r.json()["detail"]
        r = await api.post("/api/chargers/CP16C/actions/RequestStartTransaction", json={})
        assert r.status_code == 400  # a 2.0.1 action: unknown in 1.6
        r = await api.post("/api/chargers/CP16C/actions/ClearCache", json={})
        assert r.status_code == 502 and r.json()["code"] == "NotImplemented"  # station has no handler
        assert [name for name, _ in cp.received] == ["Reset", "GetConfiguration"]
    r = await api.post("/api/chargers/NOPE/actions/Reset", json={"type": "Hard"})
    assert r.status_code == 404
