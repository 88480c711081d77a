"""2.0.1 variable monitoring for the virtual charger: monitors kept per charger, NotifyEvent sent.

Monitorable variables, read every ``CHECK_S`` wall-clock seconds while monitors exist:
``EVSE`` (with ``evse.id``) ``Power`` (W drawn now), ``ChargingStation`` ``Power`` (all EVSEs) and
``ChargingStation`` ``Temperature`` (°C: 20 plus 0.5 per kW drawn, so it follows the load).
Threshold monitors report when the value crosses their threshold (and ``cleared`` when it comes
back), Delta monitors when it moved by their value since the last report, Periodic ones every
value seconds (PeriodicClockAligned: on the wall clock's multiples). ``transaction`` monitors
report only while a transaction runs; monitors less severe than the monitoring level stay silent.
SetMonitoringBase FactoryDefault or HardWiredOnly removes the custom monitors.
"""

from __future__ import annotations

import math
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from weakref import WeakKeyDictionary

from ocppj.timestamps import format_datetime
from simulators import metering
from simulators.link import Served
from simulators.model import ChargerOps, EvseState
from simulators.serving import Handler

CHECK_S = 0.5
BASE_TEMPERATURE_C = 20.0
C_PER_KW = 0.5
TYPES = frozenset({"UpperThreshold", "LowerThreshold", "Delta", "Periodic", "PeriodicClockAligned"})
_VARIABLES = {"EVSE": frozenset({"Power"}), "ChargingStation": frozenset({"Power", "Temperature"})}


@dataclass(slots=True)
class Monitor:
    """One custom monitor and what it last saw."""

    id: int
    component: dict[str, Any]
    variable: dict[str, Any]
    type: str
    value: float
    severity: int
    transaction: bool
    triggered: bool = False
    reference: float | None = None
    next_at: float = 0.0  # time.time() of the next periodic report


@dataclass(slots=True)
class Monitors:
    """A charger's monitors, its monitoring level and its event counters."""

    by_id: dict[int, Monitor] = field(default_factory=dict)
    level: int = 9
    next_id: int = 1
    seq_no: int = 0
    event_id: int = 0
    running: bool = False


_STATE: WeakKeyDictionary[ChargerOps, Monitors] = WeakKeyDictionary()


def monitors(c: ChargerOps) -> Monitors:
    state = _STATE.get(c)
    if state is None:
        state = _STATE[c] = Monitors()
    return state


def _evse_of(c: ChargerOps, component: dict[str, Any]) -> EvseState | None:
    evse = component.get("evse") or {}
    return c.evses.get(evse.get("id", 0))


def _power_w(c: ChargerOps, evse: EvseState) -> float:
    tx_id = evse.tx.local_id if evse.tx is not None else None
    limit = metering.grid_limit_a(evse, c.profiles, c.clock.now(), tx_id)
    return metering.sample(evse, c.clock.stamp(), limit).power_w


def read(c: ChargerOps, component: dict[str, Any], variable: dict[str, Any]) -> float | None:
    """The variable's value now; None when the charger has no such variable."""
    name, var = component["name"], variable["name"]
    if name == "EVSE":
        evse = _evse_of(c, component)
        return _power_w(c, evse) if evse is not None and var == "Power" else None
    if name == "ChargingStation":
        total = sum(_power_w(c, e) for e in c.evses.values())
        if var == "Power":
            return total
        if var == "Temperature":
            return round(BASE_TEMPERATURE_C + C_PER_KW * total / 1000.0, 2)
    return None


def _status(c: ChargerOps, item: dict[str, Any], state: Monitors) -> str:
    component, variable = item["component"], item["variable"]
    name = component["name"]
    if name not in _VARIABLES or (name == "EVSE" and _evse_of(c, component) is None):
        return "UnknownComponent"
    if variable["name"] not in _VARIABLES[component["name"]]:
        return "UnknownVariable"
    kind, value = item["type"], float(item["value"])
    if kind not in TYPES:
        return "UnsupportedMonitorType"
    if (kind == "Delta" and value <= 0) or (kind.startswith("Periodic") and value < 1):
        return "Rejected"
    if "id" in item and item["id"] not in state.by_id:
        return "Rejected"
    for m in state.by_id.values():
        if (m.id != item.get("id") and m.component == component and m.variable == variable
                and m.type == kind and m.severity == item["severity"]):
            return "Duplicate"
    return "Accepted"


def _set(c: ChargerOps, p: dict[str, Any]) -> Served:
    state = monitors(c)
    results = []
    for item in p["setMonitoringData"]:
        status = _status(c, item, state)
        result: dict[str, Any] = {"status": status, "type": item["type"], "severity": item["severity"],
                                  "component": item["component"], "variable": item["variable"]}
        if status == "Accepted":
            monitor_id = item.get("id")
            if monitor_id is None:
                monitor_id, state.next_id = state.next_id, state.next_id + 1
            state.by_id[monitor_id] = Monitor(
                monitor_id, item["component"], item["variable"], item["type"], float(item["value"]),
                item["severity"], bool(item.get("transaction", False)), next_at=_first_at(item),
            )
            result["id"] = monitor_id
        results.append(result)
    return Served({"setMonitoringResult": results}, lambda: _start(c, state))


def _first_at(item: dict[str, Any]) -> float:
    now, period = time.time(), float(item["value"])
    if item["type"] == "Periodic":
        return now + period
    if item["type"] == "PeriodicClockAligned":
        return math.floor(now / period) * period + period
    return 0.0


def _base(c: ChargerOps, p: dict[str, Any]) -> Served:
    if p["monitoringBase"] in ("FactoryDefault", "HardWiredOnly"):
        monitors(c).by_id.clear()
    return Served({"status": "Accepted"})


def _level(c: ChargerOps, p: dict[str, Any]) -> Served:
    severity = p["severity"]
    if not 0 <= severity <= 9:
        return Served({"status": "Rejected"})
    monitors(c).level = severity
    return Served({"status": "Accepted"})


def _clear(c: ChargerOps, p: dict[str, Any]) -> Served:
    by_id = monitors(c).by_id
    results = [{"id": i, "status": "Accepted" if by_id.pop(i, None) is not None else "NotFound"}
               for i in p["id"]]
    return Served({"clearMonitoringResult": results})


# --- the check loop ------------------------------------------------------------------------


def _start(c: ChargerOps, state: Monitors) -> None:
    """Run the checks every ``CHECK_S`` while the charger lives and has monitors."""
    if state.running or not state.by_id:
        return
    state.running = True
    ref = weakref.ref(c)

    def tick() -> None:
        charger = ref()
        if charger is None or not state.by_id:
            state.running = False
            return
        if charger.accepted:  # offline or not booted: nothing could be sent
            check(charger, state, time.time())
        charger.after(CHECK_S, tick)

    c.after(CHECK_S, tick)


def _in_transaction(c: ChargerOps, m: Monitor) -> bool:
    evse = _evse_of(c, m.component) if m.component["name"] == "EVSE" else None
    evses = [evse] if evse is not None else list(c.evses.values())
    return any(e.tx is not None for e in evses)


def check(c: ChargerOps, state: Monitors, now: float) -> None:
    """Evaluate every monitor at ``now`` (``time.time()``) and send what they report."""
    events: list[dict[str, Any]] = []
    for m in list(state.by_id.values()):
        if m.transaction and not _in_transaction(c, m):
            continue
        value = read(c, m.component, m.variable)
        if value is None:
            continue
        found = _evaluate(m, value, now)
        if found is not None and m.severity <= state.level:
            trigger, cleared = found
            state.event_id += 1
            event: dict[str, Any] = {
                "eventId": state.event_id, "timestamp": format_datetime(c.clock.stamp()), "trigger": trigger,
                "actualValue": _text(value), "eventNotificationType": "CustomMonitor",
                "component": m.component, "variable": m.variable, "variableMonitoringId": m.id,
            }
            if cleared:
                event["cleared"] = True
            events.append(event)
    if events:
        _notify(c, state, events)


def _evaluate(m: Monitor, value: float, now: float) -> tuple[str, bool] | None:
    """``(trigger, cleared)`` when ``m`` reports ``value`` at ``now``, else None."""
    if m.type in ("UpperThreshold", "LowerThreshold"):
        over = value > m.value if m.type == "UpperThreshold" else value < m.value
        if over == m.triggered:
            return None
        m.triggered = over
        return "Alerting", not over
    if m.type == "Delta":
        if m.reference is None:
            m.reference = value
            return None
        if abs(value - m.reference) < m.value:
            return None
        m.reference = value
        return "Delta", False
    if now < m.next_at:
        return None
    m.next_at += m.value * max(1, math.ceil((now - m.next_at) / m.value + 1e-9))
    return "Periodic", False


def _text(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:.2f}"


def _notify(c: ChargerOps, state: Monitors, events: list[dict[str, Any]]) -> None:
    payload = {"generatedAt": format_datetime(c.clock.stamp()), "seqNo": state.seq_no, "tbc": False,
               "eventData": events}
    state.seq_no += 1
    c.enqueue("NotifyEvent", _const(payload))


def _const(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: payload


HANDLERS: dict[str, Handler] = {
    "SetVariableMonitoring": _set,
    "SetMonitoringBase": _base,
    "SetMonitoringLevel": _level,
    "ClearVariableMonitoring": _clear,
}
