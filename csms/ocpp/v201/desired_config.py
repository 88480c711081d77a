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


def _matched(entries: list[dict[str, Any]], items: Sequence[DesiredItem]) -> list[tuple[str, dict[str, Any]]]:
    """Each result entry with the key it answers: by its component, variable and attribute type,
    else by its position (a station may leave out the optional ``attributeType``)."""
    wanted = {i.key for i in items}
    out = []
    for n, entry in enumerate(entries):
        key = _key(entry)
        if key not in wanted and n < len(items):
            key = items[n].key
        out.append((key, entry))
    return out


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
    def read(reply: dict[str, Any]) -> dict[str, Answer]:
        return {
            key: (ResultStatus.of(r.get("attributeStatus")), detail_of(r.get("attributeStatusInfo")))
            for key, r in _matched(reply.get("setVariableResult") or [], items)
        }

    return Outbound("SetVariables", {"setVariableData": data}, read)


def get_variables(items: Sequence[DesiredItem]) -> Outbound[dict[str, Reading]]:
    """GetVariables of ``items`` in one call; the values by variable key."""
    data = []
    for item in items:
        v = _of(item)
        data.append({"attributeType": v.attribute_type, "component": _component(v.component),
                     "variable": _variable(v.variable)})
    def read(reply: dict[str, Any]) -> dict[str, Reading]:
        out = {}
        for key, r in _matched(reply.get("getVariableResult") or [], items):
            status = r.get("attributeStatus")
            if status in _UNKNOWN:
                out[key] = Reading(None, supported=False)
            else:
                out[key] = Reading(r.get("attributeValue") if status == "Accepted" else None)
        return out

    return Outbound("GetVariables", {"getVariableData": data}, read)
