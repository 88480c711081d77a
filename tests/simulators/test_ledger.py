"""The fleet's ledger (``--ledger``) lists the transaction messages the CSMS acknowledged: every line
matches what the CSMS stored, and every stored session is in it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from sim_support import register_tags

from csms.app import CsmsApp
from simulators import ledger
from simulators.fleet import FleetConfig, run_fleet
from simulators.scenario import load_scenario

pytestmark = pytest.mark.e2e


def test_lines_name_the_transaction_as_the_csms_stores_it() -> None:
    start = ledger.entry("CP1", "StartTransaction", {"connectorId": 2, "idTag": "T"}, {"transactionId": 17})
    assert start is not None
    assert (start["tx"], start["event"], start["evse"], start["seq"]) == ("17", "Started", 2, None)
    stop = ledger.entry("CP1", "StopTransaction", {"transactionId": 17, "meterStop": 5}, {})
    assert stop is not None and (stop["tx"], stop["event"]) == ("17", "Ended")
    event = ledger.entry("CP2", "TransactionEvent", {"eventType": "Updated", "seqNo": 3, "evse": {"id": 1},
                                                     "transactionInfo": {"transactionId": "u-1"}}, {})
    assert event is not None
    assert (event["tx"], event["event"], event["seq"], event["evse"]) == ("u-1", "Updated", 3, 1)
    assert ledger.entry("CP1", "MeterValues", {"connectorId": 1, "meterValue": []}, {}) is None
    assert ledger.entry("CP1", "Heartbeat", {}, {"currentTime": "x"}) is None


async def test_a_two_worker_fleet_writes_every_acknowledged_start_and_stop(
    csms: CsmsApp, api: httpx.AsyncClient, tmp_path: Path,
) -> None:
    smoke = load_scenario("smoke").with_options(chargers=4, duration_s=5.0)
    scenario = replace(smoke, meter_interval_s=0.5, arrivals=replace(
        smoke.arrivals, first_within_wall_s=0.5, dwell_mean_s=3.0, dwell_min_s=2.0, dwell_max_s=4.0))
    await register_tags(api, list(scenario.id_tags))
    path = tmp_path / "ledger.jsonl"
    path.write_text('{"left": "from an earlier run"}\n')
    report = await run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=scenario, workers=2,
                                         ledger=str(path)))
    assert report.data["config"]["ledger"] == str(path)
    lines = ledger.read(str(path))
    assert all(x["station"].startswith("SMOKE") for x in lines)
    stored = {(t["charger_id"], str(t["id"])): t for t in (await api.get("/api/transactions")).json()}
    starts = {(x["station"], x["tx"]) for x in lines if x["event"] == "Started"}
    stops = {(x["station"], x["tx"]) for x in lines if x["event"] == "Ended"}
    assert starts == stops == set(stored) and len(stored) == report.data["transactions"]["started"] == 8
    assert all(stored[k]["stopped_at"] is not None for k in stops)
    assert {x["action"] for x in lines} == {"StartTransaction", "MeterValues", "StopTransaction",
                                            "TransactionEvent"}
    seqs: dict[tuple[str, str], list[int]] = {}
    for x in lines:
        if x["action"] == "TransactionEvent":
            seqs.setdefault((x["station"], x["tx"]), []).append(x["seq"])
    assert seqs and all(s == list(range(len(s))) for s in seqs.values())  # in order, none missing
