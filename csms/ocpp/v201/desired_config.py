"""2.0.1 payloads of the desired configuration: SetVariables and GetVariables in batches, their
results read back by variable key into ``csms.desired_config.rules`` values."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from csms.core.device_report import Component, Variable, variable_name
from csms.desired_config.rules import DesiredItem, DesiredVariable, Reading, ResultStatus
from csms.ocpp.outbound import Outbound, detail_of

Answer = tuple[ResultStatus, str | None]
_UNKNOWN = frozenset({"UnknownComponent", "UnknownVariable", "NotSupportedAttributeType"})


def _component(c: Component) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": c.name}
    if c.instance:
        doc["instance"] = c.instance
    if c.evse_id is not None:
        doc["evse"] = {"id": c.evse_id} if c.connector_id is None else {"id": c.evse_id,
                                                                         "connectorId": c.connector_id}
    return doc


def _variable(v: Variable) -> dict[str, Any]:
    return {"name": v.name, "instance": v.instance} if v.instance else {"name": v.name}


def _key(entry: dict[str, Any]) -> str:
    """The variable key of a result entry (its component, variable and attribute type)."""
    comp, var = entry.get("component") or {}, entry.get("variable") or {}
    evse = comp.get("evse") or {}
    component = Component(str(comp.get("name", "")), comp.get("instance"), evse.get("id"),
                          evse.get("connectorId"))
    variable = Variable(str(var.get("name", "")), var.get("instance"))
    return f"{variable_name(component, variable)}/{entry.get('attributeType') or 'Actual'}"


def _of(item: DesiredItem) -> DesiredVariable:
    if item.variable is None:
        raise ValueError(f"{item.key} is not a 2.0.1 variable")
    return item.variable


def set_variables(items: Sequence[DesiredItem]) -> Outbound[dict[str, Answer]]:
    """SetVariables of ``items`` in one call; the answer by variable key."""
    data = []
    for item in items:
        v = _of(item)
        data.append({"attributeType": v.attribute_type, "attributeValue": v.value,
                     "component": _component(v.component), "variable": _variable(v.variable)})
    return Outbound("SetVariables", {"setVariableData": data}, _read_set)


def _read_set(reply: dict[str, Any]) -> dict[str, Answer]:
    return {
        _key(r): (ResultStatus.of(r.get("attributeStatus")), detail_of(r.get("attributeStatusInfo")))
        for r in reply.get("setVariableResult") or []
    }


def get_variables(items: Sequence[DesiredItem]) -> Outbound[dict[str, Reading]]:
    """GetVariables of ``items`` in one call; the values by variable key."""
    data = []
    for item in items:
        v = _of(item)
        data.append({"attributeType": v.attribute_type, "component": _component(v.component),
                     "variable": _variable(v.variable)})
    return Outbound("GetVariables", {"getVariableData": data}, _read_get)


def _read_get(reply: dict[str, Any]) -> dict[str, Reading]:
    out = {}
    for r in reply.get("getVariableResult") or []:
        status = r.get("attributeStatus")
        if status in _UNKNOWN:
            out[_key(r)] = Reading(None, supported=False)
        else:
            out[_key(r)] = Reading(r.get("attributeValue") if status == "Accepted" else None)
    return out
