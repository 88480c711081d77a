"""Fleets against the real CSMS and against a central system built with the ``ocpp`` library."""

from __future__ import annotations

import asyncio
import itertools
import json
import resource
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from foreign_csms import running_foreign_csms
from ocpp.v16 import call as call16
from ocpp.v201 import call as call201
from sim_support import register_tags, wait_until

from csms.app import CsmsApp
from simulators.cli import main
from simulators.fleet import FleetConfig, run_fleet
from simulators.metrics import Progress
from simulators.scenario import Scenario, load_scenario

pytestmark = pytest.mark.e2e


def _quick(protocol: str = "mixed", chargers: int = 6, seconds: float = 8.0) -> Scenario:
    """The smoke scenario, shorter: every EVSE charges, meters and stops within seconds."""
    smoke = load_scenario("smoke").with_options(protocol=protocol, chargers=chargers, duration_s=seconds)
    return replace(smoke, meter_interval_s=0.5, arrivals=replace(smoke.arrivals, first_within_wall_s=0.5,
                                                                 dwell_mean_s=3.0, dwell_min_s=2.0,
                                                                 dwell_max_s=4.0))


def _cpu(who: int) -> float:
    use = resource.getrusage(who)
    return use.ru_utime + use.ru_stime


async def test_fleet_completes_sessions_against_our_csms_with_zero_protocol_errors(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    scenario = _quick(seconds=6.0)
    await register_tags(api, list(scenario.id_tags))
    seen: list[Progress] = []
    report = await run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=scenario, progress_interval_s=1.0),
                             progress=seen.append)
    data = report.data
    assert report.protocol_errors == 0, data["errors"]
    assert data["connections"]["established"] == 6
    assert data["transactions"]["started"] == data["transactions"]["stopped"] == 12
    assert data["energy_wh"] > 0
    assert data["latency_ms"]["p99"] >= data["latency_ms"]["p50"] > 0
    assert data["host"]["usable_cores"] == 1 and data["host"]["fleet_cpu_percent"] > 0
    assert "CPU of this process and its workers" in report.summary()
    by_action = data["calls"]["by_action"]
    assert {"BootNotification", "Authorize", "StatusNotification", "StartTransaction", "MeterValues",
            "StopTransaction", "TransactionEvent"} <= set(by_action)
    assert seen and seen[-1].transactions_stopped == 12
    r = await api.get("/api/transactions", params={"limit": 100})
    txs = r.json()
    assert len(txs) == 12
    assert all(not t["active"] and t["energy_wh"] > 0 for t in txs)
    assert {t["protocol"] for t in txs} == {"ocpp1.6", "ocpp2.0.1"}


async def test_an_accelerated_fleet_claims_the_wall_clock_and_a_skewed_one_its_skew(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    fast = replace(_quick(chargers=2, seconds=3.0), time_acceleration=600.0, id_prefix="FAST")
    skewed = replace(_quick(chargers=2, seconds=3.0), clock_skew_s=-7200.0, id_prefix="SKEW")
    await register_tags(api, list(fast.id_tags))
    await asyncio.gather(run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=fast)),
                         run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=skewed)))
    views = {c["id"]: c for c in (await api.get("/api/chargers")).json()}
    for i in range(2):
        assert abs(views[fast.station_id(i)]["clock_offset_s"]) < 5, views[fast.station_id(i)]
        assert abs(views[skewed.station_id(i)]["clock_offset_s"] + 7200) < 5, views[skewed.station_id(i)]


@pytest.mark.parametrize("protocol", ["1.6", "2.0.1"])
async def test_fleet_runs_against_a_csms_built_with_the_ocpp_library(protocol: str) -> None:
    scenario = _quick(protocol, chargers=3, seconds=4.5)
    async with running_foreign_csms() as foreign:
        fleet = asyncio.create_task(run_fleet(FleetConfig(csms_url=foreign.url, scenario=scenario)))
        station = scenario.station_id(0)
        await wait_until(lambda: station in foreign.ledger.points and foreign.ledger.started,
                         what="a charger with a transaction")
        answers = await _library_calls(foreign.ledger.points[station], protocol)
        report = await fleet
    assert report.protocol_errors == 0, report.data["errors"]
    assert answers == ["Accepted"] * len(answers)
    assert (station, "Heartbeat") in foreign.ledger.actions  # the triggered one
    assert len(foreign.ledger.started) == len(foreign.ledger.stopped) == 6
    assert all(foreign.ledger.stopped[tx] > start for tx, start in foreign.ledger.started.items())
    assert report.data["inbound_calls"]["total"] >= 3


async def _library_calls(cp: Any, protocol: str) -> list[str]:
    """CSMS-initiated calls through the library (which validates our answers)."""
    if protocol == "1.6":
        config = await cp.call(call16.GetConfiguration(key=["MeterValueSampleInterval"]))
        assert config.configuration_key[0]["value"] == "1"  # 0.5 s, in whole seconds (at least 1)
        results = [
            await cp.call(call16.TriggerMessage(requested_message="Heartbeat")),
            await cp.call(call16.SetChargingProfile(connector_id=0, cs_charging_profiles={
                "chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "W", "chargingSchedulePeriod": [
                    {"startPeriod": 0, "limit": 7000}]}})),
            await cp.call(call16.ChangeConfiguration(key="HeartbeatInterval", value="60")),
        ]
    else:
        variables = await cp.call(call201.GetVariables(get_variable_data=[
            {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}]))
        assert variables.get_variable_result[0]["attribute_status"] == "Accepted"
        results = [
            await cp.call(call201.TriggerMessage(requested_message="Heartbeat")),
            await cp.call(call201.SetChargingProfile(evse_id=0, charging_profile={
                "id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
                "chargingProfileKind": "Relative", "chargingSchedule": [
                    {"id": 1, "chargingRateUnit": "W",
                     "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 7000.0}]}]})),
            await cp.call(call201.GetBaseReport(request_id=1, report_base="FullInventory")),
        ]
    return [str(r.status) for r in results]


async def test_boot_pending_and_rejected_are_honoured_before_anything_else() -> None:
    scenario = replace(_quick("2.0.1", chargers=1, seconds=4.0), heartbeat_interval_s=0.0)
    async with running_foreign_csms() as foreign:
        foreign.ledger.boot_replies = ["Pending", "Rejected"]
        report = await run_fleet(FleetConfig(csms_url=foreign.url, scenario=scenario))
    actions = [a for _, a in foreign.ledger.actions]
    assert actions[:3] == ["BootNotification"] * 3
    assert "BootNotification" not in actions[3:]
    gaps = [b - a for a, b in itertools.pairwise(foreign.ledger.boot_times)]
    assert all(gap >= 0.9 for gap in gaps)  # the interval of 1 s the CSMS returned
    assert report.data["boots"] == {"accepted": 1, "pending": 1, "rejected": 1}
    assert report.protocol_errors == 0


async def test_workers_split_the_fleet_and_merge_their_reports(csms: CsmsApp, api: httpx.AsyncClient) -> None:
    scenario = _quick(chargers=4, seconds=6.0)
    await register_tags(api, list(scenario.id_tags))
    seen: list[Progress] = []
    self_before, children_before = _cpu(resource.RUSAGE_SELF), _cpu(resource.RUSAGE_CHILDREN)
    report = await run_fleet(FleetConfig(csms_url=csms.ocpp_url, scenario=scenario, workers=2,
                                         progress_interval_s=1.0), progress=seen.append)
    data = report.data
    assert data["connections"]["established"] == 4
    assert data["transactions"]["started"] == 8
    assert report.protocol_errors == 0, data["errors"]
    assert data["config"]["workers"] == 2
    assert max(p.connected for p in seen) == 4
    workers_cpu = _cpu(resource.RUSAGE_CHILDREN) - children_before
    own_cpu = _cpu(resource.RUSAGE_SELF) - self_before  # the fleet's parent and the CSMS fixture
    assert workers_cpu > 0.2  # two processes that import, connect and run chargers
    reported_cpu = data["host"]["fleet_cpu_percent"] / 100 * data["duration_s"]
    assert reported_cpu >= own_cpu + workers_cpu - 0.1  # the workers count (once they are joined)
    assert data["host"]["usable_cores"] == min(2, data["host"]["cores"])
    chargers = {c["id"] for c in (await api.get("/api/chargers")).json()}
    assert {scenario.station_id(i) for i in range(4)} <= chargers


async def test_cli_runs_a_scenario_and_writes_the_report(
    csms: CsmsApp, api: httpx.AsyncClient, tmp_path: Path
) -> None:
    scenario = load_scenario("smoke")
    await register_tags(api, list(scenario.id_tags))
    out = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--csms", csms.ocpp_url, "--scenario", "smoke",
        "--chargers", "2", "--duration", "4", "--report", str(out), "--progress-interval", "1",
        stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, stderr.decode()
    data = json.loads(out.read_text())
    assert data["schema"] == "csms-sim-report/1"
    assert data["connections"]["established"] == 2
    assert data["errors"]["protocol"] == 0
    assert "connected" in stderr.decode() and "latency ms" in stderr.decode()


def test_cli_reports_an_unreachable_csms_with_exit_code_3(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--csms", "ws://127.0.0.1:9/ocpp", "--duration", "1"]) == 3
    assert "cannot reach the CSMS" in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["run", "--csms", "http://127.0.0.1:9000/ocpp"], "must be a ws:// or wss:// URL"),
    (["run", "--csms", "ws://127.0.0.1:9/ocpp", "--scenario", "no-such-scenario"], "cannot read scenario"),
    (["run", "--csms", "ws://127.0.0.1:9/ocpp", "--clock-skew", "inf"], "clock_skew_s must be"),
])
def test_cli_rejects_bad_options_with_exit_code_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_prints_the_balancer_topology_as_toml(capsys: pytest.CaptureFixture[str]) -> None:
    import tomllib

    assert main(["topology", "--scenario", "smoke", "--format", "toml"]) == 0
    table = tomllib.loads(capsys.readouterr().out)["balancer"]
    assert [n["id"] for n in table["nodes"]] == ["site", "feeder-a", "feeder-b"]
    assert len(table["evses"]) == 12
