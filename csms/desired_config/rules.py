"""The desired-configuration rules, pure: what a set is, which value wins, what to send, what drifted.

A desired set belongs to a group (or to every station: ``DEFAULT``) and holds 1.6 configuration
keys (``ChangeConfiguration`` key -> value) and 2.0.1 variables (component, variable, attribute
type -> value, keyed like ``csms.core.device_report``: ``Component(inst)[evse.conn]/Variable(inst)/Type``).

Precedence for a station in several groups: the default set first, then the station's groups by
ascending ``priority``, each overriding what came before; so the highest priority wins, and
between equal priorities the group whose name sorts first wins.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from csms.core.device_report import Component, Variable, variable_name
from csms.core.sites import check_group_name
from csms.security.passwords import AUTHORIZATION_KEY, BASIC_AUTH_PASSWORD
from ocppj.versions import OcppVersion

DEFAULT = "*"
"""The name the default set (for every station) is kept under; no group can have it."""

MAX_ITEMS = 500
MAX_PRIORITY = 2**31 - 1
ATTRIBUTE_TYPES = ("Actual", "Target", "MinSet", "MaxSet")
_V16, _V201 = OcppVersion.V16.value, OcppVersion.V201.value
_PASSWORD_ROUTE = "set it with POST /api/chargers/{id}/password"
_VARIABLE_FIELDS = {"component", "component_instance", "evse", "connector", "variable", "variable_instance",
                    "attribute_type", "value"}


class ResultStatus(enum.StrEnum):
    """A station's answer to one key, by its own word; ``Failed``: no answer (timeout, disconnected)."""

    ACCEPTED = "Accepted"
    REBOOT_REQUIRED = "RebootRequired"
    REJECTED = "Rejected"
    NOT_SUPPORTED = "NotSupported"
    UNKNOWN_COMPONENT = "UnknownComponent"
    UNKNOWN_VARIABLE = "UnknownVariable"
    NOT_SUPPORTED_ATTRIBUTE_TYPE = "NotSupportedAttributeType"
    FAILED = "Failed"

    @classmethod
    def of(cls, word: object) -> ResultStatus:
        """The status a station answered; an unknown word counts as Rejected."""
        try:
            return cls(str(word))
        except ValueError:
            return cls.REJECTED


APPLIED = frozenset({ResultStatus.ACCEPTED, ResultStatus.REBOOT_REQUIRED})
"""Answers after which the value is not sent again until it changes or the station boots."""


@dataclass(frozen=True, slots=True)
class DesiredVariable:
    """One 2.0.1 variable attribute a station should have."""

    component: Component
    variable: Variable
    value: str
    attribute_type: str = "Actual"

    @property
    def key(self) -> str:
        return f"{variable_name(self.component, self.variable)}/{self.attribute_type}"

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"component": self.component.name}
        if self.component.instance:
            doc["component_instance"] = self.component.instance
        if self.component.evse_id is not None:
            doc["evse"] = self.component.evse_id
        if self.component.connector_id is not None:
            doc["connector"] = self.component.connector_id
        doc["variable"] = self.variable.name
        if self.variable.instance:
            doc["variable_instance"] = self.variable.instance
        doc["attribute_type"] = self.attribute_type
        doc["value"] = self.value
        doc["key"] = self.key
        return doc


@dataclass(frozen=True, slots=True)
class DesiredSet:
    """What the stations of ``group`` (``DEFAULT``: every station) should have configured."""

    group: str
    priority: int = 0
    keys: Mapping[str, str] = field(default_factory=dict)  # 1.6 ChangeConfiguration key -> value
    variables: tuple[DesiredVariable, ...] = ()  # 2.0.1
    updated_at: datetime | None = None

    def body(self) -> dict[str, Any]:
        """The set as operators write it (and as it is kept)."""
        return {
            _V16: dict(self.keys),
            _V201: [{k: v for k, v in x.to_json().items() if k != "key"} for x in self.variables],
            "priority": self.priority,
        }


@dataclass(frozen=True, slots=True)
class DesiredItem:
    """One value to have on a station, in its version: a 1.6 key or a 2.0.1 variable."""

    key: str
    value: str
    source: str  # the group whose set it comes from (DEFAULT: the default set)
    variable: DesiredVariable | None = None


@dataclass(frozen=True, slots=True)
class KeyResult:
    """A station's answer for one key: the value sent, the status, and when."""

    key: str
    value: str
    status: ResultStatus
    at: datetime
    detail: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "status": self.status.value, "at": self.at, "detail": self.detail}


# --- parsing --------------------------------------------------------------------------------------
def _text(value: object, where: str, max_len: int, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not empty):
        raise ValueError(f"{where} must be a{'' if empty else ' non-empty'} string")
    if len(value) > max_len:
        raise ValueError(f"{where} is longer than {max_len} characters")
    return value


def _small_int(value: object, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_PRIORITY:
        raise ValueError(f"{where} must be an integer from 0 to {MAX_PRIORITY}")
    return value


def _variable(raw: object, where: str) -> DesiredVariable:
    if not isinstance(raw, Mapping):
        raise ValueError(f"{where} must be an object with component, variable and value")
    unknown = set(raw) - _VARIABLE_FIELDS
    if unknown:
        raise ValueError(f"{where}: unknown fields {', '.join(sorted(map(str, unknown)))}")
    for name in ("component", "variable", "value"):
        if name not in raw:
            raise ValueError(f"{where}.{name} is required")
    evse = raw.get("evse")
    connector = raw.get("connector")
    if connector is not None and evse is None:
        raise ValueError(f"{where}.connector needs an evse")
    attr = raw.get("attribute_type", "Actual")
    if attr not in ATTRIBUTE_TYPES:
        raise ValueError(f"{where}.attribute_type must be one of {', '.join(ATTRIBUTE_TYPES)}")
    comp_inst = raw.get("component_instance")
    var_inst = raw.get("variable_instance")
    component = Component(
        _text(raw["component"], f"{where}.component", 50),
        None if comp_inst is None else _text(comp_inst, f"{where}.component_instance", 50),
        None if evse is None else _small_int(evse, f"{where}.evse"),
        None if connector is None else _small_int(connector, f"{where}.connector"),
    )
    variable = Variable(
        _text(raw["variable"], f"{where}.variable", 50),
        None if var_inst is None else _text(var_inst, f"{where}.variable_instance", 50),
    )
    return DesiredVariable(component, variable, _text(raw["value"], f"{where}.value", 2500, empty=True), attr)


def parse_set(group: str, raw: object) -> DesiredSet:
    """A desired set from the operator's JSON; ValueError says precisely what is wrong."""
    if group != DEFAULT:
        check_group_name(group)
    if not isinstance(raw, Mapping):
        raise ValueError(f'the body must be an object: {{"{_V16}": {{...}}, "{_V201}": [...], '
                         '"priority": 0}')
    unknown = set(raw) - {_V16, _V201, "priority"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(map(str, unknown)))}")
    priority = raw.get("priority", 0)
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_PRIORITY:
        raise ValueError(f"priority must be an integer from {-MAX_PRIORITY} to {MAX_PRIORITY}")
    keys16 = {} if raw.get(_V16) is None else raw[_V16]
    if not isinstance(keys16, Mapping):
        raise ValueError(f'"{_V16}" must be an object of configuration key -> value')
    keys: dict[str, str] = {}
    for key, value in keys16.items():
        _text(key, f"{_V16} key", 50)
        if key.lower() == AUTHORIZATION_KEY.lower():
            raise ValueError(f"{_V16}: {key} is a station password: {_PASSWORD_ROUTE}")
        keys[key] = _text(value, f"{_V16}.{key}", 500, empty=True)
    raw201 = [] if raw.get(_V201) is None else raw[_V201]
    if not isinstance(raw201, Sequence) or isinstance(raw201, str | bytes):
        raise ValueError(f'"{_V201}" must be a list of {{component, variable, value}} objects')
    variables = tuple(_variable(item, f"{_V201}[{i}]") for i, item in enumerate(raw201))
    seen: set[str] = set()
    for v in variables:
        if (v.component.name, v.variable.name) == BASIC_AUTH_PASSWORD:
            raise ValueError(f"{_V201}: {v.key} is a station password: {_PASSWORD_ROUTE}")
        if v.key in seen:
            raise ValueError(f"{_V201}: {v.key} is given twice")
        seen.add(v.key)
    if len(keys) + len(variables) > MAX_ITEMS:
        raise ValueError(f"a set holds at most {MAX_ITEMS} keys and variables")
    return DesiredSet(group, priority, keys, variables)


# --- precedence and sending -----------------------------------------------------------------------
def effective(
    sets: Mapping[str, DesiredSet], groups: Iterable[str], version: OcppVersion
) -> dict[str, DesiredItem]:
    """The values a station in ``groups`` should have, by key (see the module's precedence)."""
    chosen = [sets[g] for g in set(groups) if g in sets and g != DEFAULT]
    chosen.sort(key=lambda s: s.group, reverse=True)
    chosen.sort(key=lambda s: s.priority)  # stable: equal priorities keep the reversed names
    if DEFAULT in sets:
        chosen.insert(0, sets[DEFAULT])
    out: dict[str, DesiredItem] = {}
    for s in chosen:
        if version is OcppVersion.V16:
            for key, value in s.keys.items():
                out[key] = DesiredItem(key, value, s.group)
        else:
            for v in s.variables:
                out[v.key] = DesiredItem(v.key, v.value, s.group, v)
    return out


def to_send(
    desired: Mapping[str, DesiredItem], kept: Mapping[str, KeyResult], *, at_boot: bool
) -> list[DesiredItem]:
    """What to send: everything at boot; else what was not applied with its current value yet."""
    if at_boot:
        return list(desired.values())
    return [
        item for key, item in desired.items()
        if (last := kept.get(key)) is None or last.value != item.value or last.status not in APPLIED
    ]


# --- drift and status -----------------------------------------------------------------------------
class DriftStatus(enum.StrEnum):
    IN_SYNC = "in_sync"
    DRIFTED = "drifted"
    MISSING = "missing"  # the station has the key but gave no value, or did not list it
    NOT_SUPPORTED = "not_supported"  # the station does not know the key


@dataclass(frozen=True, slots=True)
class Reading:
    """A value read back from a station: ``supported`` False when it does not know the key."""

    value: str | None
    supported: bool = True


@dataclass(frozen=True, slots=True)
class DriftEntry:
    key: str
    desired: str
    actual: str | None
    status: DriftStatus
    source: str
    last_result: KeyResult | None


def same_value(desired: str, actual: str) -> bool:
    """Equal as stations report them: booleans ignore case, everything else is exact."""
    if desired.lower() in ("true", "false"):
        return desired.lower() == actual.lower()
    return desired == actual


def drift(
    desired: Mapping[str, DesiredItem], readings: Mapping[str, Reading], kept: Mapping[str, KeyResult]
) -> list[DriftEntry]:
    """Each desired key compared with what the station reported, in key order."""
    out = []
    for key in sorted(desired):
        item = desired[key]
        reading = readings.get(key)
        if reading is not None and not reading.supported:
            status = DriftStatus.NOT_SUPPORTED
        elif reading is None or reading.value is None:
            status = DriftStatus.MISSING
        else:
            status = DriftStatus.IN_SYNC if same_value(item.value, reading.value) else DriftStatus.DRIFTED
        actual = reading.value if reading is not None else None
        out.append(DriftEntry(key, item.value, actual, status, item.source, kept.get(key)))
    return out


STATUS_COUNTS = ("applied", "reboot_required", "rejected", "not_supported", "failed", "pending")


def status_counts(desired: Mapping[str, DesiredItem], kept: Mapping[str, KeyResult]) -> dict[str, int]:
    """Per-station counts from the kept results: ``pending`` is a desired value never answered for."""
    counts = dict.fromkeys(STATUS_COUNTS, 0)
    for key, item in desired.items():
        last = kept.get(key)
        if last is None or last.value != item.value:
            counts["pending"] += 1
        elif last.status is ResultStatus.ACCEPTED:
            counts["applied"] += 1
        elif last.status is ResultStatus.REBOOT_REQUIRED:
            counts["reboot_required"] += 1
        elif last.status is ResultStatus.REJECTED:
            counts["rejected"] += 1
        elif last.status is ResultStatus.FAILED:
            counts["failed"] += 1
        else:
            counts["not_supported"] += 1
    return counts
