"""A station's device model report (2.0.1 NotifyReport) in domain terms, and the keys it is kept under.

A reported variable is named by its component (name, instance, EVSE and connector) and its
variable (name, instance); each of its attributes (``Actual``, ``Target``, ``MinSet``,
``MaxSet``) may carry a value. ``entries`` flattens a report into ``(key, value)`` pairs:
``Component(instance)[evse.connector]/Variable(instance)/Type``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import quote

_KEY_SAFE = " *+=:|@._-,;!$&'~"  # kept as they are in variable keys; "/", "(", ")", "[", "]", "%" are escaped


@dataclass(frozen=True, slots=True)
class Component:
    """A part of the station's device model; the EVSE (and connector) is part of its identity."""

    name: str
    instance: str | None = None
    evse_id: int | None = None
    connector_id: int | None = None


@dataclass(frozen=True, slots=True)
class Variable:
    """A variable of a component."""

    name: str
    instance: str | None = None


@dataclass(frozen=True, slots=True)
class Attribute:
    """One attribute of a reported variable (``value`` None: the station did not send one)."""

    type: str = "Actual"
    value: str | None = None


@dataclass(frozen=True, slots=True)
class ReportedVariable:
    """One entry of a device report."""

    component: Component
    variable: Variable
    attributes: tuple[Attribute, ...] = ()


def _key_part(value: object) -> str:
    return quote(str(value), safe=_KEY_SAFE)


def variable_name(component: Component, variable: Variable) -> str:
    """A reported variable's key: ``Component(instance)[evse.connector]/Variable(instance)``.

    ``EVSE[1]/Power`` and ``EVSE[2]/Power`` are different variables. Instances go in
    parentheses, and the few characters that carry the structure are %-escaped in names, so
    two different variables never share a key.
    """
    comp = _key_part(component.name)
    if component.instance:
        comp += f"({_key_part(component.instance)})"
    if component.evse_id is not None:
        evse = _key_part(component.evse_id)
        comp += f"[{evse}.{_key_part(component.connector_id)}]" if component.connector_id is not None else (
            f"[{evse}]")
    var = _key_part(variable.name)
    if variable.instance:
        var += f"({_key_part(variable.instance)})"
    return f"{comp}/{var}"


def entries(report: Iterable[ReportedVariable]) -> Iterator[tuple[str, str]]:
    """``(key, value)`` of every attribute with a value, in report order.

    A NUL character becomes U+FFFD (PostgreSQL text holds no NUL).
    """
    for item in report:
        name = variable_name(item.component, item.variable)
        for attr in item.attributes:
            if attr.value is None:
                continue
            yield f"{name}/{_key_part(attr.type)}", attr.value.replace("\x00", "\ufffd")
