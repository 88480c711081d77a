"""OCPP 2.0.1 display-message and monitoring payloads from ``csms.display.rules`` values, and
their answers read back."""

from __future__ import annotations

from typing import Any

from csms.display.rules import (
    DisplayMessage,
    MessageState,
    Monitor,
    MonitoringBase,
    MonitorResult,
    Priority,
)
from csms.errors import ResponseInvalid
from csms.ocpp.outbound import Outbound, detail_of
from csms.ocpp.v201.profiles import answer_of
from csms.profiles.rules import Answer
from ocppj.timestamps import format_datetime


def set_display_message(m: DisplayMessage) -> Outbound[Answer]:
    content: dict[str, Any] = {"format": m.format.value, "content": m.content}
    if m.language is not None:
        content["language"] = m.language
    info: dict[str, Any] = {"id": m.message_id, "priority": m.priority.value, "message": content}
    if m.state is not None:
        info["state"] = m.state.value
    if m.start is not None:
        info["startDateTime"] = format_datetime(m.start, timespec="seconds")
    if m.end is not None:
        info["endDateTime"] = format_datetime(m.end, timespec="seconds")
    if m.transaction_id is not None:
        info["transactionId"] = m.transaction_id
    return Outbound("SetDisplayMessage", {"message": info}, answer_of)


def get_display_messages(
    request_id: int, ids: tuple[int, ...] = (), priority: Priority | None = None,
    state: MessageState | None = None,
) -> Outbound[Answer]:
    """GetDisplayMessages: Accepted (NotifyDisplayMessages with ``request_id`` follow) or Unknown."""
    payload: dict[str, Any] = {"requestId": request_id}
    if ids:
        payload["id"] = list(ids)
    if priority is not None:
        payload["priority"] = priority.value
    if state is not None:
        payload["state"] = state.value
    return Outbound("GetDisplayMessages", payload, answer_of)


def clear_display_message(message_id: int) -> Outbound[Answer]:
    return Outbound("ClearDisplayMessage", {"id": message_id}, answer_of)


def _component(m: Monitor) -> dict[str, Any]:
    component: dict[str, Any] = {"name": m.component}
    if m.component_instance is not None:
        component["instance"] = m.component_instance
    if m.evse_id is not None:
        component["evse"] = {"id": m.evse_id}
        if m.connector_id is not None:
            component["evse"]["connectorId"] = m.connector_id
    return component


def _variable(m: Monitor) -> dict[str, Any]:
    variable: dict[str, Any] = {"name": m.variable}
    if m.variable_instance is not None:
        variable["instance"] = m.variable_instance
    return variable


def set_variable_monitoring(monitors: tuple[Monitor, ...]) -> Outbound[list[MonitorResult]]:
    """SetVariableMonitoring; the answer is one result per monitor, in the request's order."""
    data = []
    for m in monitors:
        item: dict[str, Any] = {"value": m.value, "type": m.type.value, "severity": m.severity,
                                "component": _component(m), "variable": _variable(m)}
        if m.transaction:
            item["transaction"] = True
        if m.monitor_id is not None:
            item["id"] = m.monitor_id
        data.append(item)

    def read(reply: dict[str, Any]) -> list[MonitorResult]:
        results = reply.get("setMonitoringResult")
        if not isinstance(results, list) or len(results) != len(monitors):
            raise ResponseInvalid("SetVariableMonitoring answered a different number of results")
        return [MonitorResult(r["status"], r.get("id"), m, detail_of(r.get("statusInfo")))
                for r, m in zip(results, monitors, strict=True)]

    return Outbound("SetVariableMonitoring", {"setMonitoringData": data}, read)


def set_monitoring_base(base: MonitoringBase) -> Outbound[Answer]:
    return Outbound("SetMonitoringBase", {"monitoringBase": base.value}, answer_of)


def set_monitoring_level(severity: int) -> Outbound[Answer]:
    return Outbound("SetMonitoringLevel", {"severity": severity}, answer_of)


def clear_variable_monitoring(monitor_id: int) -> Outbound[Answer]:
    """ClearVariableMonitoring of one monitor: Accepted, Rejected or NotFound."""
    def read(reply: dict[str, Any]) -> Answer:
        for r in reply.get("clearMonitoringResult") or ():
            if r.get("id") == monitor_id:
                return Answer(r["status"], detail_of(r.get("statusInfo")))
        raise ResponseInvalid(f"ClearVariableMonitoring answered nothing for monitor {monitor_id}")
    return Outbound("ClearVariableMonitoring", {"id": [monitor_id]}, read)
