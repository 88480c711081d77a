"""Electric-vehicle charging physics as a pure, sans-I/O model.

The virtual charger owns the clock and the OCPP messages; this module only answers
"given this car, this supply and this limit, what happens during the next ``dt_s`` seconds?"::

    state = EVState.arrive(random_ev_config(rng))
    state, reading = step(state, 60.0, limit_a=16.0, supply=SupplySpec.ac(3))

Conventions shared with :mod:`simulators.profiles`:

- A limit is a current in amperes *per phase* (``limit_a``); the power it allows is
  ``limit_a * phases * voltage_v``. For DC the supply has one "phase" at its nominal DC
  voltage, so a W limit converted to A with the same numbers round-trips exactly.
- ``None`` means unlimited. On AC a limit below 6 A (IEC 61851-1) pauses the car.
- Powers and energies are measured at the grid side (what the station meter sees); the
  battery receives ``efficiency`` of it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from enum import StrEnum

AC_MIN_CURRENT_A = 6.0
"""IEC 61851-1 minimum pilot current: below this an AC car pauses charging."""

_MAX_TAPER_SUBSTEP_SOC_PERCENT = 0.5
"""Integration step inside the taper region, where power changes with SoC."""


class SupplyKind(StrEnum):
    """Whether the EVSE delivers AC (onboard charger) or DC (fast charging)."""

    AC = "AC"
    DC = "DC"


@dataclass(frozen=True, slots=True)
class SupplySpec:
    """What the EVSE can deliver to the car.

    AC: ``phases`` is 1-3 and ``voltage_v`` the phase-to-neutral voltage.
    DC: ``phases`` is 1 by convention and ``voltage_v`` the nominal DC voltage.
    """

    kind: SupplyKind
    phases: int
    voltage_v: float
    max_current_a: float | None = None
    max_power_w: float | None = None

    def __post_init__(self) -> None:
        if not 1 <= self.phases <= 3:
            raise ValueError(f"phases must be 1, 2 or 3, got {self.phases}")
        if self.kind is SupplyKind.DC and self.phases != 1:
            raise ValueError("a DC supply has phases=1")
        if self.voltage_v <= 0:
            raise ValueError(f"voltage_v must be positive, got {self.voltage_v}")

    @classmethod
    def ac(
        cls, phases: int = 3, *, voltage_v: float = 230.0, max_current_a: float | None = None
    ) -> SupplySpec:
        """An AC EVSE with ``phases`` phases, optionally rated at ``max_current_a`` per phase."""
        return cls(SupplyKind.AC, phases, voltage_v, max_current_a=max_current_a)

    @classmethod
    def dc(cls, max_power_w: float, *, voltage_v: float = 400.0) -> SupplySpec:
        """A DC EVSE delivering at most ``max_power_w``."""
        return cls(SupplyKind.DC, 1, voltage_v, max_power_w=max_power_w)

    def limited_to(self, number_phases: int | None) -> SupplySpec:
        """This supply restricted to ``number_phases`` (a profile's numberPhases); AC only."""
        if number_phases is None or self.kind is SupplyKind.DC or number_phases >= self.phases:
            return self
        return replace(self, phases=max(1, number_phases))


@dataclass(frozen=True, slots=True)
class EVConfig:
    """A car model: battery, onboard charger and DC charging curve.

    The battery accepts at most ``max_dc_power_kw`` up to ``taper_start_soc_percent``,
    then exponentially less, down to ``taper_floor`` of it at 100 %. On AC the onboard
    charger caps the draw at ``max_ac_current_a`` on ``ac_phases`` phases.
    """

    battery_capacity_kwh: float = 60.0
    initial_soc_percent: float = 20.0
    target_soc_percent: float = 80.0
    max_ac_current_a: float = 16.0
    ac_phases: int = 3
    max_dc_power_kw: float = 100.0
    taper_start_soc_percent: float = 80.0
    taper_floor: float = 0.1
    efficiency: float = 0.92

    def __post_init__(self) -> None:
        checks = {
            "battery_capacity_kwh > 0": self.battery_capacity_kwh > 0,
            "0 <= initial_soc_percent <= 100": 0 <= self.initial_soc_percent <= 100,
            "0 < target_soc_percent <= 100": 0 < self.target_soc_percent <= 100,
            "max_ac_current_a >= 0": self.max_ac_current_a >= 0,
            "ac_phases in (1, 2, 3)": self.ac_phases in (1, 2, 3),
            "max_dc_power_kw > 0": self.max_dc_power_kw > 0,
            "0 <= taper_start_soc_percent < 100": 0 <= self.taper_start_soc_percent < 100,
            "0 < taper_floor <= 1": 0 < self.taper_floor <= 1,
            "0 < efficiency <= 1": 0 < self.efficiency <= 1,
        }
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise ValueError(f"invalid EVConfig: {', '.join(failed)}")


@dataclass(frozen=True, slots=True)
class EVState:
    """A car plugged in: its model, state of charge and energy taken this session."""

    config: EVConfig
    soc_percent: float
    delivered_wh: float = 0.0

    @classmethod
    def arrive(cls, config: EVConfig) -> EVState:
        """The car as it arrives, at its initial SoC."""
        return cls(config, config.initial_soc_percent)

    @property
    def full(self) -> bool:
        """True once the car reached its target SoC and stopped drawing."""
        return self.soc_percent >= self.config.target_soc_percent


@dataclass(frozen=True, slots=True)
class Reading:
    """What the station meter sees for one step.

    ``power_w`` is the average over the step (instantaneous for ``dt_s == 0``);
    ``current_a`` is per phase L1-L3 (zeros for unused phases; DC current in L1);
    ``energy_wh`` is the energy delivered during this step.
    """

    power_w: float
    current_a: tuple[float, float, float]
    voltage_v: float
    energy_wh: float
    soc_percent: float


def phases_used(config: EVConfig, supply: SupplySpec) -> int:
    """Phases the car actually draws on (1 for DC)."""
    if supply.kind is SupplyKind.DC:
        return 1
    return min(config.ac_phases, supply.phases)


def acceptance_w(config: EVConfig, soc_percent: float) -> float:
    """The battery's charging curve: the most grid power it accepts at ``soc_percent``."""
    peak_w = config.max_dc_power_kw * 1000.0
    if soc_percent <= config.taper_start_soc_percent:
        return peak_w
    progress = (soc_percent - config.taper_start_soc_percent) / (100.0 - config.taper_start_soc_percent)
    return peak_w * math.pow(config.taper_floor, min(1.0, progress))


def draw_w(config: EVConfig, soc_percent: float, limit_a: float | None, supply: SupplySpec) -> float:
    """Instantaneous grid power the car draws; never above ``limit_a`` (per phase)."""
    if soc_percent >= config.target_soc_percent:
        return 0.0
    if supply.kind is SupplyKind.AC:
        current_a = min(_or_inf(limit_a), _or_inf(supply.max_current_a), config.max_ac_current_a)
        if current_a < AC_MIN_CURRENT_A:
            return 0.0
        cap_w = current_a * phases_used(config, supply) * supply.voltage_v
    else:
        current_a = min(_or_inf(limit_a), _or_inf(supply.max_current_a))
        cap_w = min(current_a * supply.voltage_v, _or_inf(supply.max_power_w))
    return max(0.0, min(cap_w, acceptance_w(config, soc_percent)))


def step(
    state: EVState, dt_s: float, limit_a: float | None, *, supply: SupplySpec
) -> tuple[EVState, Reading]:
    """Charge for ``dt_s`` seconds under ``limit_a`` amperes per phase (None: unlimited).

    Returns the new state and the meter reading for the step. ``dt_s == 0`` gives the
    instantaneous power without charging (for triggered MeterValues).
    """
    if dt_s < 0 or not math.isfinite(dt_s):
        raise ValueError(f"dt_s must be finite and >= 0, got {dt_s}")
    config = state.config
    if dt_s == 0:
        power_w = draw_w(config, state.soc_percent, limit_a, supply)
        return state, _reading(config, supply, power_w, 0.0, state.soc_percent)
    soc_percent, energy_wh = _integrate(state, dt_s, limit_a, supply)
    new_state = replace(state, soc_percent=soc_percent, delivered_wh=state.delivered_wh + energy_wh)
    return new_state, _reading(config, supply, energy_wh * 3600.0 / dt_s, energy_wh, soc_percent)


def _integrate(state: EVState, dt_s: float, limit_a: float | None, supply: SupplySpec) -> tuple[float, float]:
    """SoC and grid energy after ``dt_s``, integrating finely only where the curve tapers."""
    config = state.config
    wh_per_percent = config.battery_capacity_kwh * 10.0 / config.efficiency
    soc_percent, energy_wh, remaining_s = state.soc_percent, 0.0, dt_s
    while remaining_s > 1e-9:
        power_w = draw_w(config, soc_percent, limit_a, supply)
        if power_w < 1e-6:  # nothing (a denormal limit would make every chunk round to no time)
            break
        to_target_wh = (config.target_soc_percent - soc_percent) * wh_per_percent
        if soc_percent < config.taper_start_soc_percent:
            span_percent = config.taper_start_soc_percent - soc_percent
        else:
            span_percent = _MAX_TAPER_SUBSTEP_SOC_PERCENT
        chunk_wh = min(power_w * remaining_s / 3600.0, to_target_wh, span_percent * wh_per_percent)
        energy_wh += chunk_wh
        remaining_s -= chunk_wh * 3600.0 / power_w
        if chunk_wh >= to_target_wh:
            return config.target_soc_percent, energy_wh
        soc_percent += chunk_wh / wh_per_percent
    return soc_percent, energy_wh


def _reading(
    config: EVConfig, supply: SupplySpec, power_w: float, energy_wh: float, soc_percent: float
) -> Reading:
    """A meter reading with ``power_w`` spread evenly over the phases in use."""
    phases = phases_used(config, supply)
    per_phase_a = power_w / (phases * supply.voltage_v)
    current_a = tuple(per_phase_a if i < phases else 0.0 for i in range(3))
    return Reading(
        power_w=power_w,
        current_a=(current_a[0], current_a[1], current_a[2]),
        voltage_v=supply.voltage_v,
        energy_wh=energy_wh,
        soc_percent=soc_percent,
    )


def _or_inf(value: float | None) -> float:
    return math.inf if value is None else value


def random_ev_config(rng: random.Random) -> EVConfig:
    """A realistic car drawn from ``rng`` (pass a seeded Random for a reproducible fleet).

    Batteries 40-100 kWh, arrival SoC 10-60 %, target 80/90/100 %; mostly three-phase
    11 kW onboard chargers, some 22 kW and single-phase 7.4 kW; DC 50-250 kW.
    """
    capacity_kwh = round(rng.uniform(40.0, 100.0), 1)
    ac_phases = 3 if rng.random() < 0.8 else 1
    max_ac_current_a = 32.0 if ac_phases == 1 or rng.random() < 0.15 else 16.0
    c_rate = rng.uniform(1.0, 2.5)
    return EVConfig(
        battery_capacity_kwh=capacity_kwh,
        initial_soc_percent=round(rng.uniform(10.0, 60.0), 1),
        target_soc_percent=rng.choices([80.0, 90.0, 100.0], weights=[5, 3, 2])[0],
        max_ac_current_a=max_ac_current_a,
        ac_phases=ac_phases,
        max_dc_power_kw=round(min(250.0, max(50.0, capacity_kwh * c_rate))),
        taper_start_soc_percent=round(rng.uniform(70.0, 85.0)),
        taper_floor=round(rng.uniform(0.05, 0.2), 2),
        efficiency=round(rng.uniform(0.88, 0.95), 2),
    )
