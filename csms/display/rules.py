"""Display messages and variable monitors in domain terms, and their rules (pure, no I/O).

Both exist in OCPP 2.0.1 only. ``DisplayInvalid`` names the field and the reason.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

MAX_ID = 2**31 - 1
MAX_CONTENT = 512
MAX_NAME = 50


class DisplayInvalid(ValueError):
    """A display message or monitor that breaks a rule; the text names the field."""


class Priority(enum.StrEnum):
    ALWAYS_FRONT = "AlwaysFront"
    IN_FRONT = "InFront"
    NORMAL_CYCLE = "NormalCycle"


class MessageState(enum.StrEnum):
    CHARGING = "Charging"
    FAULTED = "Faulted"
    IDLE = "Idle"
    UNAVAILABLE = "Unavailable"


class MessageFormat(enum.StrEnum):
    ASCII = "ASCII"
    HTML = "HTML"
    URI = "URI"
    UTF8 = "UTF8"


@dataclass(frozen=True, slots=True, kw_only=True)
class DisplayMessage:
    """A message for the station's display (SetDisplayMessage)."""

    message_id: int
    priority: Priority
    content: str
    format: MessageFormat = MessageFormat.UTF8
    language: str | None = None
    state: MessageState | None = None
    start: datetime | None = None
    end: datetime | None = None
    transaction_id: str | None = None


class MonitorType(enum.StrEnum):
    UPPER_THRESHOLD = "UpperThreshold"
    LOWER_THRESHOLD = "LowerThreshold"
    DELTA = "Delta"
    PERIODIC = "Periodic"
    PERIODIC_CLOCK_ALIGNED = "PeriodicClockAligned"


class MonitoringBase(enum.StrEnum):
    ALL = "All"
    FACTORY_DEFAULT = "FactoryDefault"
    HARD_WIRED_ONLY = "HardWiredOnly"


@dataclass(frozen=True, slots=True, kw_only=True)
class Monitor:
    """A monitor on one component's variable (SetVariableMonitoring); ``monitor_id`` replaces one."""

    component: str
    variable: str
    type: MonitorType
    value: float
    severity: int
    component_instance: str | None = None
    variable_instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None
    transaction: bool = False
    monitor_id: int | None = None


@dataclass(frozen=True, slots=True)
class MonitorResult:
    """The station's answer for one monitor: its id when Accepted."""

    status: str
    monitor_id: int | None
    monitor: Monitor
    detail: str | None = None


def check_message(m: DisplayMessage) -> None:
    if not 1 <= m.message_id <= MAX_ID:
        raise DisplayInvalid(f"id: must be 1..{MAX_ID}")
    if not m.content or len(m.content) > MAX_CONTENT:
        raise DisplayInvalid(f"content: 1..{MAX_CONTENT} characters")
    if m.format is MessageFormat.ASCII and not m.content.isascii():
        raise DisplayInvalid("content: an ASCII message has ASCII characters only")
    if m.language is not None and not 1 <= len(m.language) <= 8:
        raise DisplayInvalid("language: an RFC 5646 tag of at most 8 characters, e.g. en or nl")
    if m.start is not None and m.end is not None and m.end <= m.start:
        raise DisplayInvalid("end: must be after start")
    if m.transaction_id is not None and not 1 <= len(m.transaction_id) <= 36:
        raise DisplayInvalid("transaction_id: 1..36 characters")


def check_monitor(m: Monitor, index: int = 0) -> None:
    at = f"monitors[{index}]."
    for name, value in (("component", m.component), ("variable", m.variable)):
        if not 1 <= len(value) <= MAX_NAME:
            raise DisplayInvalid(f"{at}{name}: 1..{MAX_NAME} characters")
    instances = (("component_instance", m.component_instance), ("variable_instance", m.variable_instance))
    for name, opt in instances:
        if opt is not None and not 1 <= len(opt) <= MAX_NAME:
            raise DisplayInvalid(f"{at}{name}: 1..{MAX_NAME} characters")
    if m.connector_id is not None and m.evse_id is None:
        raise DisplayInvalid(f"{at}connector_id: needs evse_id")
    if m.evse_id is not None and not 1 <= m.evse_id <= MAX_ID:
        raise DisplayInvalid(f"{at}evse_id: must be >= 1")
    if m.connector_id is not None and not 1 <= m.connector_id <= MAX_ID:
        raise DisplayInvalid(f"{at}connector_id: must be >= 1")
    if not 0 <= m.severity <= 9:
        raise DisplayInvalid(f"{at}severity: 0 (danger) .. 9 (debug)")
    if m.monitor_id is not None and not 0 <= m.monitor_id <= MAX_ID:
        raise DisplayInvalid(f"{at}id: must be 0..{MAX_ID}")
    if m.value != m.value or abs(m.value) > 1e15:  # NaN or absurd
        raise DisplayInvalid(f"{at}value: a finite number")
    if m.type is MonitorType.DELTA and m.value <= 0:
        raise DisplayInvalid(f"{at}value: a Delta monitor needs a positive delta")
    if m.type in (MonitorType.PERIODIC, MonitorType.PERIODIC_CLOCK_ALIGNED) and not 1 <= m.value <= 86_400:
        raise DisplayInvalid(f"{at}value: a periodic monitor's interval is 1..86400 s")


def check_monitors(monitors: tuple[Monitor, ...]) -> None:
    if not monitors:
        raise DisplayInvalid("monitors: at least one")
    if len(monitors) > 100:
        raise DisplayInvalid("monitors: at most 100 in one request")
    for i, m in enumerate(monitors):
        check_monitor(m, i)


def check_level(severity: int) -> None:
    if not 0 <= severity <= 9:
        raise DisplayInvalid("severity: 0 (danger) .. 9 (debug)")


def check_monitor_id(monitor_id: int) -> None:
    if not 0 <= monitor_id <= MAX_ID:
        raise DisplayInvalid(f"monitor id: must be 0..{MAX_ID}")
