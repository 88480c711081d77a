"""Display-message and monitor rules (pure), and the 2.0.1 payloads built from them."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from csms.display.rules import (
    DisplayInvalid,
    DisplayMessage,
    MessageFormat,
    MessageState,
    Monitor,
    MonitoringBase,
    MonitorType,
    Priority,
    check_level,
    check_message,
    check_monitors,
)
from csms.ocpp.v201 import display as v201
from ocppj import schemas
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
MSG = DisplayMessage(message_id=3, priority=Priority.IN_FRONT, content="Free charging tonight",
                     language="en", state=MessageState.IDLE, start=T0, end=T0.replace(hour=20),
                     transaction_id="tx-9")
MON = Monitor(component="EVSE", variable="Power", type=MonitorType.UPPER_THRESHOLD, value=11000.0,
              severity=2, evse_id=1, connector_id=1, component_instance="main", variable_instance="L1",
              transaction=True, monitor_id=4)


@pytest.mark.parametrize(("change", "field"), [
    ({"message_id": 0}, "id"), ({"content": ""}, "content"), ({"content": "x" * 513}, "content"),
    ({"format": MessageFormat.ASCII, "content": "café"}, "content"),
    ({"language": "much-too-long"}, "language"),
    ({"end": T0}, "end"), ({"transaction_id": "t" * 37}, "transaction_id"),
])
def test_display_messages_break_rules_by_field(change: dict[str, object], field: str) -> None:
    check_message(MSG)
    with pytest.raises(DisplayInvalid, match=field):
        check_message(replace(MSG, **change))  # type: ignore[arg-type]


@pytest.mark.parametrize(("change", "field"), [
    ({"component": ""}, "component"), ({"variable": "v" * 51}, "variable"), ({"severity": 10}, "severity"),
    ({"evse_id": None}, "connector_id"), ({"type": MonitorType.DELTA, "value": 0.0}, "value"),
    ({"type": MonitorType.PERIODIC, "value": 0.5}, "value"), ({"value": float("nan")}, "value"),
    ({"monitor_id": -1}, "id"),
])
def test_monitors_break_rules_by_field(change: dict[str, object], field: str) -> None:
    check_monitors((MON,))
    with pytest.raises(DisplayInvalid, match=rf"monitors\[1\]\.{field}"):
        check_monitors((MON, replace(MON, **change)))  # type: ignore[arg-type]


def test_monitor_requests_and_levels_are_bounded() -> None:
    with pytest.raises(DisplayInvalid, match="at least one"):
        check_monitors(())
    with pytest.raises(DisplayInvalid, match="at most 100"):
        check_monitors((MON,) * 101)
    check_level(0)
    with pytest.raises(DisplayInvalid, match="severity"):
        check_level(-1)


def test_the_payloads_are_schema_valid_2_0_1() -> None:
    outs = [v201.set_display_message(MSG), v201.get_display_messages(7, (1, 2), Priority.ALWAYS_FRONT,
                                                                     MessageState.CHARGING),
            v201.clear_display_message(3), v201.set_variable_monitoring((MON, replace(MON, monitor_id=None))),
            v201.set_monitoring_base(MonitoringBase.HARD_WIRED_ONLY), v201.set_monitoring_level(4),
            v201.clear_variable_monitoring(4)]
    for out in outs:
        assert schemas.validate(OcppVersion.V201, out.action, out.payload, response=False) is None, out.action
    info = outs[0].payload["message"]
    assert info["message"] == {"format": "UTF8", "content": "Free charging tonight", "language": "en"}
    assert info["startDateTime"] == "2026-12-07T08:00:00Z" and info["transactionId"] == "tx-9"
    item = outs[3].payload["setMonitoringData"][0]
    assert item["component"] == {"name": "EVSE", "instance": "main", "evse": {"id": 1, "connectorId": 1}}
    assert item["transaction"] is True and item["id"] == 4


def test_answers_are_read_per_monitor() -> None:
    out = v201.set_variable_monitoring((MON,))
    [result] = out.read({"setMonitoringResult": [{"status": "Accepted", "id": 4, "type": "UpperThreshold",
                                                  "severity": 2, "component": {"name": "EVSE"},
                                                  "variable": {"name": "Power"}}]})
    assert (result.status, result.monitor_id, result.monitor) == ("Accepted", 4, MON)
    reply = {"clearMonitoringResult": [{"id": 4, "status": "NotFound"}]}
    answer = v201.clear_variable_monitoring(4).read(reply)
    assert answer.status == "NotFound"
