"""The simulator's monitors and display messages, without a CSMS: what each monitor type reports
and when, the statuses SetVariableMonitoring answers, and the display board."""

from __future__ import annotations

from typing import Any

import pytest

from ocppj.versions import OcppVersion
from simulators import display, monitoring
from simulators.monitoring import Monitor, Monitors, check
from tests.simulators.sim_support import make_charger

STATION = {"name": "ChargingStation"}
TEMP = {"name": "Temperature"}


def monitor(kind: str, value: float, severity: int = 5) -> Monitor:
    first = monitoring._first_at({"type": kind, "value": value}) if kind.startswith("P") else 0.0
    return Monitor(1, STATION, TEMP, kind, value, severity, False, next_at=first)


def test_a_threshold_reports_when_crossed_and_when_it_clears() -> None:
    m = monitor("UpperThreshold", 30.0)
    seen = [monitoring._evaluate(m, v, 0.0) for v in (20.0, 31.0, 35.0, 29.0, 29.5)]
    assert seen == [None, ("Alerting", False), None, ("Alerting", True), None]
    low = monitor("LowerThreshold", 10.0)
    assert [monitoring._evaluate(low, v, 0.0) for v in (12.0, 9.0, 8.0)] == [None, ("Alerting", False), None]


def test_a_delta_reports_each_move_of_its_size_from_the_last_report() -> None:
    m = monitor("Delta", 5.0)
    seen = [monitoring._evaluate(m, v, 0.0) for v in (20.0, 24.0, 26.0, 28.0, 20.5)]
    assert seen == [None, None, ("Delta", False), None, ("Delta", False)]


def test_a_periodic_monitor_reports_once_per_period_even_after_a_gap() -> None:
    m = Monitor(1, STATION, TEMP, "Periodic", 10.0, 5, False, next_at=100.0)
    times = (95.0, 100.0, 105.0, 131.0, 139.0, 140.0)
    reported = [monitoring._evaluate(m, 1.0, t) is not None for t in times]
    assert reported == [False, True, False, True, False, True]


class Recording:
    """The part of a charger ``check`` uses: its EVSEs, clock and outbox."""

    def __init__(self) -> None:
        charger = make_charger("ws://unused", OcppVersion.V201, "REC")
        self.evses, self.clock, self.profiles = charger.evses, charger.clock, charger.profiles
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def enqueue(self, action: str, build: Any, **_: Any) -> None:
        self.sent.append((action, build()))


def test_check_sends_one_notify_event_per_round_and_honours_the_level(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = iter([25.0, 40.0, 40.0])
    monkeypatch.setattr(monitoring, "read", lambda c, comp, var: next(values))
    c = Recording()
    state = Monitors(by_id={1: monitor("UpperThreshold", 30.0, severity=3)})
    check(c, state, 0.0)  # type: ignore[arg-type]
    check(c, state, 1.0)  # type: ignore[arg-type]
    [(action, payload)] = c.sent
    assert action == "NotifyEvent" and payload["seqNo"] == 0 and payload["tbc"] is False
    [event] = payload["eventData"]
    assert (event["trigger"], event["actualValue"], event["variableMonitoringId"]) == ("Alerting", "40", 1)
    assert event["eventNotificationType"] == "CustomMonitor" and "cleared" not in event
    state.by_id[1].triggered, state.level = False, 2  # severity 3 is below the level now
    check(c, state, 2.0)  # type: ignore[arg-type]
    assert len(c.sent) == 1


def test_temperature_follows_the_load_and_unknown_variables_are_none() -> None:
    c = make_charger("ws://unused", OcppVersion.V201, "TMP")
    assert monitoring.read(c, STATION, TEMP) == 20.0
    assert monitoring.read(c, {"name": "EVSE", "evse": {"id": 1}}, {"name": "Power"}) == 0.0
    assert monitoring.read(c, {"name": "EVSE", "evse": {"id": 7}}, {"name": "Power"}) is None
    assert monitoring.read(c, STATION, {"name": "Humidity"}) is None


async def test_set_variable_monitoring_answers_per_monitor() -> None:
    c = make_charger("ws://unused", OcppVersion.V201, "SVM")

    def item(**over: Any) -> dict[str, Any]:
        return {"value": 30, "type": "UpperThreshold", "severity": 5, "component": STATION, "variable": TEMP,
                **over}

    served = monitoring._set(c, {"setMonitoringData": [
        item(), item(), item(severity=4), item(type="Delta", value=0), item(id=99),
        item(component={"name": "EVSE", "evse": {"id": 3}}), item(variable={"name": "Voltage"}),
    ]})
    assert [r["status"] for r in served.payload["setMonitoringResult"]] == [
        "Accepted", "Duplicate", "Accepted", "Rejected", "Rejected", "UnknownComponent", "UnknownVariable"]
    assert [r.get("id") for r in served.payload["setMonitoringResult"]][:3] == [1, None, 2]
    replaced = monitoring._set(c, {"setMonitoringData": [item(id=1, value=50)]})
    assert replaced.payload["setMonitoringResult"][0] == {**replaced.payload["setMonitoringResult"][0],
                                                         "status": "Accepted", "id": 1}
    assert monitoring.monitors(c).by_id[1].value == 50
    cleared = monitoring._clear(c, {"id": [1, 1234]})
    assert cleared.payload == {"clearMonitoringResult": [{"id": 1, "status": "Accepted"},
                                                         {"id": 1234, "status": "NotFound"}]}
    assert monitoring._base(c, {"monitoringBase": "FactoryDefault"}).payload == {"status": "Accepted"}
    assert monitoring.monitors(c).by_id == {}


def test_the_display_board_keeps_refuses_and_clears() -> None:
    c = make_charger("ws://unused", OcppVersion.V201, "BRD")

    def msg(i: int, fmt: str = "UTF8") -> dict[str, Any]:
        content = {"format": fmt, "content": f"m{i}"}
        return {"message": {"id": i, "priority": "NormalCycle", "message": content}}

    assert display._set(c, msg(1, "HTML")).payload == {"status": "NotSupportedMessageFormat"}
    for i in range(display.MAX_MESSAGES):
        assert display._set(c, msg(i + 1)).payload == {"status": "Accepted"}
    assert display._set(c, msg(99)).payload["status"] == "Rejected"
    assert display._set(c, msg(1, "ASCII")).payload == {"status": "Accepted"}  # replacing one is fine
    assert display._get(c, {"requestId": 1, "priority": "AlwaysFront"}).payload == {"status": "Unknown"}
    assert display._clear(c, {"id": 1}).payload == {"status": "Accepted"}
    assert display._clear(c, {"id": 1}).payload == {"status": "Unknown"}
    assert len(display.messages(c)) == display.MAX_MESSAGES - 1
