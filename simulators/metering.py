"""An EVSE's meter under its charging profiles: pure functions over :class:`EvseState`.

Limits and meter currents are grid-side amperes per phase (``EvseSpec.grid_voltage_v``).
AC: the car draws on its own phases. DC: the EVSE is a three-phase grid load; an A limit is
converted to DC amperes at ``EvseSpec.dc_voltage_v`` for the EV model, and the meter reports
the three-phase grid input.
"""

from __future__ import annotations

from datetime import datetime

from simulators.ev import SupplyKind, phases_used, step
from simulators.model import EvseState, Sample
from simulators.profiles import ProfileSet


def grid_phases(evse: EvseState) -> int:
    """Grid phases the EVSE loads now (the car's phases on AC, three on DC)."""
    ev = evse.ev
    if ev is None or evse.spec.kind is SupplyKind.DC:
        return evse.spec.grid_phases
    return phases_used(ev.config, evse.supply)


def grid_limit_a(
    evse: EvseState, profiles: ProfileSet, now: datetime, tx_id: str | int | None
) -> float | None:
    """The installed profiles' limit on ``evse`` at ``now``: amperes per phase, None = unlimited."""
    if not len(profiles):
        return None
    tx = evse.tx
    return profiles.limit_at(
        now, evse.id, tx_id, tx.started_at if tx else None,
        phases=grid_phases(evse), voltage_v=evse.spec.grid_voltage_v,
    )


def ev_limit_a(evse: EvseState, limit_a: float | None) -> float | None:
    """A grid-side limit as the EV model takes it (DC: amperes at the DC voltage)."""
    spec = evse.spec
    if limit_a is None or spec.kind is SupplyKind.AC:
        return limit_a
    return limit_a * 3 * spec.grid_voltage_v / spec.dc_voltage_v


def settle(evse: EvseState, now_s: float, limit_a: float | None) -> float:
    """Charge the car from its last step to ``now_s`` (simulated seconds) under ``limit_a``;
    return the energy delivered (Wh), already added to the register."""
    dt = now_s - evse.last_step_s
    evse.last_step_s = now_s
    if evse.ev is None or evse.tx is None or dt <= 0:
        return 0.0
    evse.ev, reading = step(evse.ev, dt, ev_limit_a(evse, limit_a), supply=evse.supply)
    evse.register_wh += reading.energy_wh
    return reading.energy_wh


def sample(evse: EvseState, now: datetime, limit_a: float | None) -> Sample:
    """The meter at ``now``: the register and the instantaneous draw under ``limit_a``."""
    spec = evse.spec
    offered = spec.rated_current_a if limit_a is None else min(limit_a, spec.rated_current_a)
    phases = grid_phases(evse)
    ev = evse.ev
    if ev is None or evse.tx is None:
        return Sample(now, evse.register_wh, 0.0, (0.0, 0.0, 0.0), spec.grid_voltage_v, phases, offered, None)
    _, reading = step(ev, 0.0, ev_limit_a(evse, limit_a), supply=evse.supply)
    current = reading.current_a
    if spec.kind is SupplyKind.DC:
        per_phase = reading.power_w / (3 * spec.grid_voltage_v)
        current = (per_phase, per_phase, per_phase)
    return Sample(now, evse.register_wh, reading.power_w, current, spec.grid_voltage_v, phases, offered,
                  ev.soc_percent)
