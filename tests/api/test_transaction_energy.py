"""Active sessions of both versions show their energy so far, in whole Wh, from the latest reading."""

from __future__ import annotations

import httpx
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201

from csms.app import CsmsApp
from tests.e2e.stations import Station16, Station201, connected

T0, T1 = "2026-11-29T08:00:00Z", "2026-11-29T08:05:00Z"


async def _active(api: httpx.AsyncClient, charger_id: str) -> dict[str, object]:
    txs = (await api.get("/api/transactions", params={"charger_id": charger_id, "active": True})).json()
    assert len(txs) == 1
    tx: dict[str, object] = txs[0]
    return tx


async def test_an_active_16_session_reports_energy_from_meter_values_without_a_transaction_id(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station16, csms.ocpp_url, "E16", "ocpp1.6") as cp:
        await cp.call(call16.StartTransaction(connector_id=1, id_tag="T", meter_start=1_000, timestamp=T0),
                      suppress=False)
        assert (await _active(api, "E16"))["energy_wh"] is None  # no reading yet
        await cp.call(call16.MeterValues(connector_id=1, meter_value=[{"timestamp": T1, "sampled_value": [
            {"value": "1089.60000000009313", "measurand": "Energy.Active.Import.Register", "unit": "Wh"}]}]),
            suppress=False)
        assert (await _active(api, "E16"))["energy_wh"] == 90


async def test_an_active_201_session_reports_energy_from_plain_meter_values(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station201, csms.ocpp_url, "E201", "ocpp2.0.1") as cs:
        begin = {"timestamp": T0, "sampled_value": [
            {"value": 2_000, "measurand": "Energy.Active.Import.Register", "context": "Transaction.Begin"}]}
        await cs.call(call201.TransactionEvent(
            event_type="Started", timestamp=T0, trigger_reason="CablePluggedIn", seq_no=0,
            transaction_info={"transaction_id": "TXE"}, evse={"id": 1, "connector_id": 1},
            meter_value=[begin],
        ), suppress=False)
        await cs.call(call201.MeterValues(evse_id=1, meter_value=[{"timestamp": T1, "sampled_value": [
            {"value": 2_345.4999, "measurand": "Energy.Active.Import.Register"}]}]), suppress=False)
        assert (await _active(api, "E201"))["energy_wh"] == 345
