"""NotifyReport's ``reportData`` as domain records."""

from __future__ import annotations

from csms.core.device_report import Attribute, Component, ReportedVariable, Variable
from csms.ocpp.v201.convert import reported_variables


def test_report_data_converts_to_typed_records() -> None:
    assert reported_variables([
        {"component": {"name": "Connector", "instance": "a", "evse": {"id": 2, "connectorId": 1}},
         "variable": {"name": "Type", "instance": "b"},
         "variableAttribute": [{"type": "Target", "value": "cType2"}, {"value": 7}, {"type": "MaxSet"}],
         "variableCharacteristics": {"dataType": "string", "supportsMonitoring": False}},
        {"component": {"name": "EVSE", "evse": {"id": 1}}, "variable": {"name": "Power"},
         "variableAttribute": []},
    ]) == [
        ReportedVariable(Component("Connector", "a", 2, 1), Variable("Type", "b"),
                         (Attribute("Target", "cType2"), Attribute("Actual", "7"), Attribute("MaxSet"))),
        ReportedVariable(Component("EVSE", None, 1, None), Variable("Power", None), ()),
    ]
