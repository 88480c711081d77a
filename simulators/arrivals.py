"""When cars arrive at an EVSE and how long they stay: pure functions of a seeded RNG.

Arrivals at an idle EVSE form an inhomogeneous Poisson process whose rate follows a
24-hour profile of the simulated clock (sampled by thinning). Optionally a share of
EVSEs gets its first car within the first seconds of a run, so short runs see
sessions at once. Parking time is log-normal, clipped to [min, max]; so is the energy
a car wants when ``energy_kwh_mean`` is set (else it charges from its arrival state of
charge to its target).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from datetime import datetime

from simulators.ev import EVConfig, random_ev_config

# Public and workplace charging in a car-dense city: a morning bump, a long evening peak.
CITY_PROFILE: tuple[float, ...] = (
    0.2, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.4, 1.6, 1.2, 0.9, 0.8,
    0.9, 0.9, 1.0, 1.2, 1.6, 2.2, 2.6, 2.4, 1.8, 1.2, 0.7, 0.4,
)
FLAT_PROFILE: tuple[float, ...] = (1.0,) * 24


@dataclass(frozen=True, slots=True)
class ArrivalConfig:
    """Arrival process of one EVSE. Wall-clock seconds where named ``*_wall_s``,
    simulated seconds otherwise."""

    first_within_wall_s: float = 10.0
    first_share: float = 0.9
    sessions_per_day: float = 4.0
    daily_profile: tuple[float, ...] = CITY_PROFILE
    dwell_mean_s: float = 1800.0
    dwell_min_s: float = 60.0
    dwell_max_s: float = 8 * 3600.0
    dwell_sigma: float = 0.6
    energy_kwh_mean: float = 0.0  # 0: the car's own need (arrival SoC to target SoC)
    energy_kwh_min: float = 1.0
    energy_kwh_max: float = 100.0
    energy_sigma: float = 0.5

    def __post_init__(self) -> None:
        problems = []
        energy = (self.energy_kwh_min, self.energy_kwh_mean, self.energy_kwh_max)
        if self.energy_kwh_mean and not 0 < energy[0] <= energy[1] <= energy[2]:
            problems.append("need 0 < energy_kwh_min <= energy_kwh_mean <= energy_kwh_max")
        if len(self.daily_profile) != 24 or any(w < 0 for w in self.daily_profile):
            problems.append("daily_profile needs 24 weights >= 0")
        if not 0 <= self.first_share <= 1:
            problems.append("first_share must be in [0, 1]")
        if self.first_within_wall_s < 0 or self.sessions_per_day < 0:
            problems.append("first_within_wall_s and sessions_per_day must be >= 0")
        if not 0 < self.dwell_min_s <= self.dwell_mean_s <= self.dwell_max_s:
            problems.append("need 0 < dwell_min_s <= dwell_mean_s <= dwell_max_s")
        if problems:
            raise ValueError("; ".join(problems))


def first_arrival_wall_s(rng: random.Random, cfg: ArrivalConfig) -> float | None:
    """Wall seconds after boot until this EVSE's early first car, or None (no early car)."""
    if rng.random() >= cfg.first_share:
        return None
    return rng.uniform(0.0, cfg.first_within_wall_s)


def rate_per_s(cfg: ArrivalConfig, when: datetime) -> float:
    """Arrival rate (per simulated second) at ``when``."""
    mean = sum(cfg.daily_profile) / 24
    if mean <= 0:
        return 0.0
    hour = when.hour
    return cfg.sessions_per_day / 86_400 * cfg.daily_profile[hour] / mean


def next_arrival_s(
    rng: random.Random, cfg: ArrivalConfig, now: datetime, *, max_tries: int = 10_000
) -> float:
    """Simulated seconds from ``now`` until the next car (``inf`` if none will come)."""
    mean = sum(cfg.daily_profile) / 24
    if cfg.sessions_per_day <= 0 or mean <= 0:
        return math.inf
    peak = cfg.sessions_per_day / 86_400 * max(cfg.daily_profile) / mean
    base_s = now.hour * 3600 + now.minute * 60 + now.second + now.microsecond / 1e6
    t = 0.0
    for _ in range(max_tries):
        t += rng.expovariate(peak)
        hour = int((base_s + t) // 3600) % 24
        if rng.random() * max(cfg.daily_profile) <= cfg.daily_profile[hour]:
            return t
    return t


def _lognormal(rng: random.Random, mean: float, sigma: float, low: float, high: float) -> float:
    mu = math.log(mean) - sigma * sigma / 2
    return min(high, max(low, rng.lognormvariate(mu, sigma)))


def dwell_s(rng: random.Random, cfg: ArrivalConfig) -> float:
    """Simulated seconds a car stays plugged in."""
    return _lognormal(rng, cfg.dwell_mean_s, cfg.dwell_sigma, cfg.dwell_min_s, cfg.dwell_max_s)


def session_ev(rng: random.Random, cfg: ArrivalConfig | None) -> EVConfig:
    """The car of one session; with ``cfg.energy_kwh_mean`` its state of charge is set so
    it wants a log-normal energy (battery side, at most a full battery)."""
    car = random_ev_config(rng)
    if cfg is None or not cfg.energy_kwh_mean:
        return car
    want = _lognormal(rng, cfg.energy_kwh_mean, cfg.energy_sigma, cfg.energy_kwh_min, cfg.energy_kwh_max)
    share = min(100.0, 100.0 * want / car.battery_capacity_kwh)
    start = min(car.initial_soc_percent, 100.0 - share)
    return replace(car, initial_soc_percent=round(start, 2), target_soc_percent=round(start + share, 2))
