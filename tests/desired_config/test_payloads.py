"""The per-version payloads: valid against the official schemas, answers read by key."""

from __future__ import annotations

from csms.desired_config.rules import Reading, ResultStatus, effective, parse_set
from csms.ocpp.v16 import desired_config as v16
from csms.ocpp.v201 import desired_config as v201
from ocppj import schemas
from ocppj.versions import OcppVersion

SET = parse_set("g", {
    "ocpp1.6": {"HeartbeatInterval": "300"},
    "ocpp2.0.1": [
        {"component": "OCPPCommCtrlr", "variable": "HeartbeatInterval", "value": "300"},
        {"component": "EVSE", "evse": 1, "connector": 1, "variable": "Power", "attribute_type": "MaxSet",
         "value": "11000"},
    ],
})


def test_v16_change_and_read_are_schema_valid_and_read_back() -> None:
    item = effective({"g": SET}, ["g"], OcppVersion.V16)["HeartbeatInterval"]
    out = v16.change(item)
    assert schemas.validate(OcppVersion.V16, out.action, out.payload, response=False) is None
    assert out.read({"status": "RebootRequired"}) == (ResultStatus.REBOOT_REQUIRED, None)
    read = v16.read(["HeartbeatInterval", "Nope"])
    assert schemas.validate(OcppVersion.V16, read.action, read.payload, response=False) is None
    assert read.read({"configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "60"}],
                      "unknownKey": ["Nope"]}) == {"HeartbeatInterval": Reading("60"),
                                                   "Nope": Reading(None, supported=False)}


def test_v201_batches_are_schema_valid_and_results_matched_by_key_not_order() -> None:
    items = list(effective({"g": SET}, ["g"], OcppVersion.V201).values())
    out = v201.set_variables(items)
    assert schemas.validate(OcppVersion.V201, out.action, out.payload, response=False) is None
    evse = {"name": "EVSE", "evse": {"id": 1, "connectorId": 1}}
    assert out.payload["setVariableData"][1]["component"] == evse
    answers = out.read({"setVariableResult": [
        {"attributeStatus": "Rejected", "attributeType": "MaxSet", "component": {"name": "EVSE",
         "evse": {"id": 1, "connectorId": 1}}, "variable": {"name": "Power"},
         "attributeStatusInfo": {"reasonCode": "OutOfRange"}},
        {"attributeStatus": "Accepted", "component": {"name": "OCPPCommCtrlr"},
         "variable": {"name": "HeartbeatInterval"}},
    ]})
    assert answers == {"EVSE[1.1]/Power/MaxSet": (ResultStatus.REJECTED, "OutOfRange"),
                       "OCPPCommCtrlr/HeartbeatInterval/Actual": (ResultStatus.ACCEPTED, None)}
    get = v201.get_variables(items)
    assert schemas.validate(OcppVersion.V201, get.action, get.payload, response=False) is None
    readings = get.read({"getVariableResult": [
        {"attributeStatus": "Accepted", "attributeValue": "300", "component": {"name": "OCPPCommCtrlr"},
         "variable": {"name": "HeartbeatInterval"}},
        {"attributeStatus": "UnknownComponent",  # no attributeType: matched by its position
         "component": {"name": "EVSE", "evse": {"id": 1, "connectorId": 1}}, "variable": {"name": "Power"}},
    ]})
    assert readings == {"OCPPCommCtrlr/HeartbeatInterval/Actual": Reading("300"),
                        "EVSE[1.1]/Power/MaxSet": Reading(None, supported=False)}
