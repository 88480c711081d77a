"""Device variables a 2.0.1 station reports (NotifyReport): kept across restarts, bounded per station."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.v201 import call

from csms.app import running
from csms.core.device_report import variable_name as _variable_name
from csms.core.ports import SystemClock
from csms.core.service import MAX_VARIABLES, ChargingService, ServiceSettings
from csms.ocpp.v201.convert import component, reported_variables, variable
from csms.store.sql import SqlStore
from tests.conftest import make_settings
from tests.e2e.stations import Station201, connected


def item(component: str, variable: str, value: str, kind: str = "Actual", **more: Any) -> dict[str, Any]:
    return {"component": {"name": component, **more}, "variable": {"name": variable},
            "variableAttribute": [{"type": kind, "value": value}]}


async def test_reported_variables_survive_a_restart(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    async with running(settings) as app:
        async with connected(Station201, app.ocpp_url, "CS-DM", "ocpp2.0.1") as cs:
            await cs.call(call.NotifyReport(
                request_id=7, generated_at="2026-11-29T08:00:00Z", seq_no=0, tbc=False,
                report_data=[
                    {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
                     "variable_attribute": [{"type": "Actual", "value": "300"}]},
                    {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
                     "variable_attribute": [{"type": "MaxSet", "value": "22000"},
                                            {"type": "Actual", "value": "0"}]},
                    {"component": {"name": "EVSE", "evse": {"id": 2}}, "variable": {"name": "Power"},
                     "variable_attribute": [{"type": "MaxSet", "value": "11000"}]},
                    {"component": {"name": "Connector", "evse": {"id": 2, "connector_id": 1}},
                     "variable": {"name": "ConnectorType"},
                     "variable_attribute": [{"type": "Actual", "value": "cType2"}]},
                ],
            ), suppress=False)
        assert app.service is not None
        reported = dict(app.service.live["CS-DM"].variables)
    assert reported == {"OCPPCommCtrlr/HeartbeatInterval/Actual": "300", "EVSE[1]/Power/MaxSet": "22000",
                        "EVSE[1]/Power/Actual": "0", "EVSE[2]/Power/MaxSet": "11000",
                        "Connector[2.1]/ConnectorType/Actual": "cType2"}
    async with running(settings) as again:  # same database file, a new process state
        assert again.service is not None
        assert again.service.live["CS-DM"].variables == reported
        async with httpx.AsyncClient(base_url=again.api_url) as api:
            r = await api.get("/api/chargers/CS-DM/variables")
            assert r.status_code == 200 and r.json() == reported
            assert (await api.get("/api/chargers/NOPE/variables")).status_code == 404


async def test_variables_are_written_behind_and_capped_per_station(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = await SqlStore.open(str(tmp_path / "v.sqlite3"))
    try:
        await store.upsert_station("CS-BIG")
        service = ChargingService(store, lambda _e: None, SystemClock(), ServiceSettings())
        report = [item("Ctrlr", f"V{i}", str(i)) for i in range(MAX_VARIABLES + 10)]
        with caplog.at_level(logging.WARNING, logger="csms.core.service"):
            service.device_report("CS-BIG", reported_variables(report))
        assert "10 variables dropped" in caplog.text
        # a known name still changes
        service.device_report("CS-BIG", reported_variables([item("Ctrlr", "V0", "changed")]))
        assert await store.load_variables() == {}  # not written yet: written behind
        await service.flush()
        stored = (await store.load_variables())["CS-BIG"]
        assert len(stored) == MAX_VARIABLES and stored["Ctrlr/V0/Actual"] == "changed"
        assert "Ctrlr/V5000/Actual" not in stored
        restarted = ChargingService(store, lambda _e: None, SystemClock(), ServiceSettings())
        await restarted.load()
        assert restarted.live["CS-BIG"].variables == stored
    finally:
        await store.close()


def variable_name(comp: dict[str, Any], var: dict[str, Any]) -> str:
    """The key of a variable as the 2.0.1 adapter reads it from a report."""
    return _variable_name(component(comp), variable(var))


def test_variable_keys_keep_every_part_apart() -> None:
    keys = {
        variable_name({"name": "A"}, {"name": "B", "instance": "C"}),
        variable_name({"name": "A", "instance": "B"}, {"name": "C"}),
        variable_name({"name": "A/B"}, {"name": "C"}),
        variable_name({"name": "A"}, {"name": "B/C"}),
        variable_name({"name": "A", "evse": {"id": 1}}, {"name": "B"}),
        variable_name({"name": "A", "evse": {"id": 1, "connectorId": 2}}, {"name": "B"}),
        variable_name({"name": "A[1]"}, {"name": "B"}),
    }
    assert len(keys) == 7
    assert variable_name({"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}) == "EVSE[1]/Power"
    assert variable_name({"name": "Ctrlr", "instance": "x"}, {"name": "V"}) == "Ctrlr(x)/V"
