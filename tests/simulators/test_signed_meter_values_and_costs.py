"""Simulated stations send signed OCMF start and end readings that reach the CDR intact and verify
with the test key; 2.0.1 stations keep the running cost the CSMS sends them (CostUpdated)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from sim_support import QUICK, TAG, VERSIONS, make_charger, register_tags, running, wait_until

from csms.app import CsmsApp
from csms.app import running as csms_running
from csms.tariffs.plugin import tariffs_plugin
from ocppj.versions import OcppVersion
from simulators import ocmf
from simulators.arrivals import ArrivalConfig
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e

SESSION = ArrivalConfig(first_within_wall_s=0.2, first_share=1.0, sessions_per_day=0.0,
                        dwell_mean_s=4.0, dwell_min_s=3.5, dwell_max_s=4.5)
TARIFF = {"tariff_id": "standard", "currency": "EUR", "vat_percent": "19", "elements": [
    {"price_components": [{"type": "ENERGY", "price": "0.40"}, {"type": "FLAT", "price": "1.00"}]}]}


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    settings = make_settings(tmp_path, tariffs={"cost_update_interval_s": 0.3, "reconcile_s": 1})
    async with csms_running(settings, plugins=[tariffs_plugin]) as app:
        yield app


@pytest.mark.parametrize("version", VERSIONS)
async def test_signed_readings_reach_the_cdr_and_verify(priced: CsmsApp, version: OcppVersion) -> None:
    station = f"SIGNED-{'16' if version is OcppVersion.V16 else '201'}"
    async with httpx.AsyncClient(base_url=priced.api_url) as api:
        await register_tags(api, [TAG])
        assert (await api.post("/api/tariffs", json=TARIFF)).status_code == 201
        await api.put("/api/tariff-assignments", json={"scope": "default", "tariff_id": "standard"})
        charger = make_charger(priced.ocpp_url, version, station, arrivals=SESSION,
                               behaviour=replace(QUICK, signed_meter_values=True))
        async with running(charger):
            if version is OcppVersion.V201:
                def told_cost() -> float | None:
                    tx = charger.evses[1].tx
                    return tx.total_cost if tx is not None else None

                assert await wait_until(told_cost, what="a CostUpdated") >= 1.0  # the session fee at least

            async def cdr() -> dict[str, Any] | None:
                found = (await api.get("/api/cdrs", params={"charger_id": station})).json()
                return found[0] if found else None

            record = await wait_until(cdr, timeout=20, what="the session's CDR")
    signed = record["signed_meter_values"]
    assert [s["context"] for s in signed] == ["Transaction.Begin", "Transaction.End"]
    for value in signed:
        if version is OcppVersion.V16:
            assert value["encoding"] == "SignedData"
            data = value["data"]
        else:
            assert (value["encoding"], value["signing_method"]) == ("OCMF", ocmf.SIGNING_METHOD)
            assert base64.b64decode(value["public_key"]) == ocmf.public_key_der()
            data = base64.b64decode(value["data"]).decode("utf-8")
        assert data.startswith("OCMF|") and ocmf.verify(data)
        assert not ocmf.verify(data.replace('"RV":', '"RV":1'))  # a changed reading fails
    assert record["total_incl_vat"] is not None and record["tariff_id"] == "standard"
