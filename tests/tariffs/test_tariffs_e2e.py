"""Sessions priced end to end: an independent OCPP client (the ``ocpp`` library) in both versions
against a running CSMS with the reference tariff (0.40/kWh + 1.00 per session + 0.10 per idle
minute after 5 idle minutes, VAT 19 %); 2.0.1 running costs and total cost; CDR export."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201

from csms.app import CsmsApp, running
from csms.tariffs.plugin import tariffs_plugin
from tests.conftest import make_settings
from tests.e2e.stations import Station16, Station201, connected

REFERENCE = {
    "tariff_id": "standard",
    "currency": "EUR",
    "vat_percent": "19",
    "idle_grace_s": 300,
    "alt_text": [
        {"language": "en", "text": "0.40 EUR/kWh, 1.00 EUR per session, 0.10 EUR/min idle after 5 min"}
    ],
    "elements": [
        {
            "price_components": [
                {"type": "ENERGY", "price": "0.40", "step_size": 1},
                {"type": "FLAT", "price": "1.00"},
                {"type": "PARKING_TIME", "price": "6.00", "step_size": 60},
            ]
        }
    ],
}
SIGNED_OCMF = (
    'OCMF|{"FV":"1.0","GI":"SIM","PG":"T1","RD":[{"TM":"2026-12-07T10:00:00,000+0000 S","RV":10.0}]}'
    '|{"SD":"3045"}'
)


class CostAware201(Station201):
    @on("CostUpdated")
    async def on_cost_updated(self, total_cost: float, transaction_id: str) -> result201.CostUpdated:
        self.received.append(("CostUpdated", {"total_cost": total_cost, "transaction_id": transaction_id}))
        return result201.CostUpdated()


def stamp(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        await asyncio.sleep(0.2)


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    settings = make_settings(
        tmp_path,
        accept_unknown_tags=True,
        tariffs={"reading_interval_s": 1, "cost_update_interval_s": 0.3, "reconcile_s": 1},
    )
    async with running(settings, plugins=[tariffs_plugin]) as app:
        yield app


async def _reference(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/tariffs", json=REFERENCE)
    assert r.status_code == 201, r.text
    r = await api.put("/api/tariff-assignments", json={"scope": "default", "tariff_id": "standard"})
    assert r.status_code == 200, r.text


async def test_both_versions_are_priced_exactly_and_exported(csms: CsmsApp) -> None:
    t0 = (datetime.now(UTC) - timedelta(minutes=80)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=csms.api_url) as api:
        await _reference(api)
        # 1.6: 10 kWh over the first hour, then 20 minutes plugged in: 15 billed idle minutes
        async with connected(Station16, csms.ocpp_url, "CP16", "ocpp1.6") as cp:
            await cp.call(
                call16.BootNotification(charge_point_vendor="Acme", charge_point_model="AC22"), suppress=False
            )
            start = await cp.call(
                call16.StartTransaction(connector_id=1, id_tag="T1", meter_start=0, timestamp=stamp(t0)),
                suppress=False,
            )
            tx16 = start.transaction_id
            for minutes, wh in ((30, 5000), (60, 10000)):
                await cp.call(
                    call16.MeterValues(
                        connector_id=1,
                        transaction_id=tx16,
                        meter_value=[
                            {
                                "timestamp": stamp(t0 + timedelta(minutes=minutes)),
                                "sampled_value": [
                                    {"value": str(wh), "measurand": "Energy.Active.Import.Register"}
                                ],
                            }
                        ],
                    ),
                    suppress=False,
                )
            await cp.call(
                call16.StopTransaction(
                    meter_stop=10000,
                    timestamp=stamp(t0 + timedelta(minutes=80)),
                    transaction_id=tx16,
                    transaction_data=[
                        {
                            "timestamp": stamp(t0 + timedelta(minutes=80)),
                            "sampled_value": [
                                {
                                    "value": SIGNED_OCMF,
                                    "format": "SignedData",
                                    "context": "Transaction.End",
                                    "measurand": "Energy.Active.Import.Register",
                                }
                            ],
                        }
                    ],
                ),
                suppress=False,
            )

        # 2.0.1: the same session; CostUpdated while charging, totalCost in the Ended answer
        async with connected(CostAware201, csms.ocpp_url, "CS201", "ocpp2.0.1") as cs:
            await cs.call(
                call201.BootNotification(
                    charging_station={"model": "M", "vendor_name": "V"}, reason="PowerUp"
                ),
                suppress=False,
            )

            def event(kind: str, seq: int, minutes: int, wh: int, **extra: Any) -> call201.TransactionEvent:
                value: dict[str, Any] = {"value": wh, "measurand": "Energy.Active.Import.Register"}
                if "signed" in extra:
                    value["signed_meter_value"] = extra.pop("signed")
                return call201.TransactionEvent(
                    event_type=kind,
                    timestamp=stamp(t0 + timedelta(minutes=minutes)),
                    seq_no=seq,
                    trigger_reason=extra.pop("trigger", "MeterValuePeriodic"),
                    transaction_info={"transaction_id": "TX-1", **extra.pop("info", {})},
                    evse={"id": 1, "connector_id": 1},
                    meter_value=[
                        {"timestamp": stamp(t0 + timedelta(minutes=minutes)), "sampled_value": [value]}
                    ],
                    **extra,
                )

            await cs.call(
                event(
                    "Started", 0, 0, 0, trigger="Authorized", id_token={"id_token": "T2", "type": "ISO14443"}
                ),
                suppress=False,
            )
            await cs.call(event("Updated", 1, 30, 5000), suppress=False)
            await cs.call(event("Updated", 2, 60, 10000), suppress=False)

            async def cost_updated() -> bool:
                return any(name == "CostUpdated" for name, _ in cs.received)

            await eventually(cost_updated)
            update = next(p for name, p in cs.received if name == "CostUpdated")
            assert update["transaction_id"] == "TX-1" and update["total_cost"] >= 7.74 - 0.5
            ended = await cs.call(
                event(
                    "Ended",
                    3,
                    80,
                    10000,
                    trigger="EVCommunicationLost",
                    info={"stopped_reason": "EVDisconnected"},
                    signed={
                        "signed_meter_data": SIGNED_OCMF,
                        "signing_method": "ECDSA-P256",
                        "encoding_method": "OCMF",
                        "public_key": "PUBKEY",
                    },
                ),
                suppress=False,
            )
            assert ended.total_cost == 7.74

        async def two_cdrs() -> bool:
            return len((await api.get("/api/cdrs")).json()) == 2

        await eventually(two_cdrs)
        cdrs = {c["charger_id"]: c for c in (await api.get("/api/cdrs")).json()}
        for cdr in cdrs.values():
            assert (cdr["total_excl_vat"], cdr["total_vat"], cdr["total_incl_vat"]) == (
                "6.50",
                "1.24",
                "7.74",
            )
            assert cdr["energy_wh"] == "10000" and cdr["idle_s"] == 1200 and cdr["duration_s"] == 4800
            assert cdr["tariff_id"] == "standard" and cdr["tariff_version"] == 1 and cdr["currency"] == "EUR"
            assert [s["data"] for s in cdr["signed_meter_values"]] == [SIGNED_OCMF]
        assert cdrs["CS201"]["signed_meter_values"][0]["encoding"] == "OCMF"
        assert cdrs["CS201"]["stop_reason"] == "EVDisconnected"

        # the CSV: one row per session in range, the signed data intact, readable by a CSV parser
        since = stamp(t0 - timedelta(minutes=1))
        r = await api.get(
            "/api/cdrs", params={"format": "csv", "from": since, "to": stamp(datetime.now(UTC))}
        )
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
        assert r.content.count(b"\r\n") >= 3
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert sorted(row["charger_id"] for row in rows) == ["CP16", "CS201"]
        for row in rows:
            assert row["total_incl_vat"] == "7.74"
            assert json.loads(row["signed_meter_values"])[0]["data"] == SIGNED_OCMF
        r = await api.get("/api/cdrs", params={"format": "csv", "from": stamp(datetime.now(UTC))})
        assert len(list(csv.DictReader(io.StringIO(r.text)))) == 0


async def test_a_cdr_is_made_after_a_restart_for_a_session_that_ended_unpriced(tmp_path: Path) -> None:
    t0 = (datetime.now(UTC) - timedelta(minutes=80)).replace(microsecond=0)
    settings = make_settings(tmp_path, accept_unknown_tags=True, tariffs={"reconcile_s": 1})
    async with (
        running(settings) as app,
        connected(Station16, app.ocpp_url, "CP16", "ocpp1.6") as cp,
    ):  # no tariffs part: ends unpriced
        start = await cp.call(
            call16.StartTransaction(connector_id=1, id_tag="T1", meter_start=0, timestamp=stamp(t0)),
            suppress=False,
        )
        await cp.call(
            call16.StopTransaction(
                meter_stop=10000,
                timestamp=stamp(t0 + timedelta(minutes=60)),
                transaction_id=start.transaction_id,
            ),
            suppress=False,
        )
    async with (
        running(settings, plugins=[tariffs_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url) as api,
    ):
        await _reference(api)

        async def priced() -> bool:
            return len((await api.get("/api/cdrs")).json()) == 1

        await eventually(priced)
        [cdr] = (await api.get("/api/cdrs")).json()
        # made before the tariff existed? then it says so; once assigned, reprice is explicit
        if cdr["tariff_id"] is None:
            assert "no_tariff" in cdr["flags"]
            r = await api.post(f"/api/cdrs/{cdr['id']}/reprice")
            assert r.status_code == 200, r.text
            cdr = r.json()
            assert cdr["repriced_at"] is not None
        assert (cdr["total_excl_vat"], cdr["total_incl_vat"]) == ("5.00", "5.95")


async def test_removing_a_station_or_a_site_removes_its_tariff_assignment(csms: CsmsApp) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url) as api:
        await _reference(api)
        assert (await api.put("/api/chargers/CPX", json={})).is_success
        r = await api.post("/api/sites", json={"site_id": "harbour", "name": "Harbour"})
        assert r.status_code == 201, r.text
        for scope, target in (("station", "CPX"), ("site", "harbour"), ("group", "harbour")):
            r = await api.put("/api/tariff-assignments", json={"scope": scope, "target": target,
                                                               "tariff_id": "standard"})
            assert r.status_code == 200, r.text
        assert (await api.delete("/api/chargers/CPX")).status_code == 204
        assert (await api.delete("/api/sites/harbour")).status_code == 204
        left = {(a["scope"], a["target"]) for a in (await api.get("/api/tariff-assignments")).json()}
        assert left == {("default", ""), ("group", "harbour")}  # a group of that name is another target
