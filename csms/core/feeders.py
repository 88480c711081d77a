"""Feeder loads: what the balancer reports about each node of the feeder tree.

One :class:`FeederLoad` per node and tick, with the chargers attached directly to
the node. Currents are amperes on the node's highest phase, unrounded; renderers
(API, console, telemetry) round them for display with :func:`display_a`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload


@dataclass(frozen=True, slots=True)
class ChargerLoad:
    """One balanced EVSE under a node: its allocation and what it draws."""

    station_id: str
    evse_id: int
    allocated_a: float
    """The limit the balancer gave it, per phase (0 = paused or idle)."""
    reason: str
    """What bounds the allocation (``idle``, ``paused``, ``node:<id>``, ``evse_max`` ...)."""
    measured_a: float
    """Its measured current on its highest phase (0 when not metered)."""
    charging: bool
    """A transaction is running on it."""


@dataclass(frozen=True, slots=True)
class FeederLoad:
    """One node of the feeder tree after a balancer tick.

    ``limit_a`` is the per-phase limit before margin and base load; ``available_a`` is
    limit - margin - base load; ``measured_a`` is the base load plus the measured EV
    currents; ``allocated_a`` the allocations under the node (fixed loads included);
    ``headroom_a`` = available - allocated. None stands for unlimited.
    """

    node_id: str
    parent_id: str | None
    limit_a: float | None
    available_a: float | None
    measured_a: float
    allocated_a: float
    headroom_a: float | None
    meter_stale: bool = False
    """The node's meter went silent: it counts as full."""
    chargers: tuple[ChargerLoad, ...] = ()


@overload
def display_a(value: float) -> float: ...
@overload
def display_a(value: None) -> None: ...
@overload
def display_a(value: float | None) -> float | None: ...
def display_a(value: float | None) -> float | None:
    """Amperes to 0.01 A for display (sums of floats carry noise like 1e-14; -0.0 shows as 0.0)."""
    return None if value is None else round(value, 2) + 0.0
