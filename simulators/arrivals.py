"""When cars arrive at an EVSE and how long they stay: pure functions of a seeded RNG.

Arrivals at an idle EVSE form an inhomogeneous Poisson process whose rate follows a
24-hour profile of the simulated clock (sampled by thinning). Optionally a share of
EVSEs gets its first car within the first seconds of a run, so short runs see
sessions at once. Parking time is log-normal, clipped to [min, max].
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

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

    def __post_init__(self) -> None:
        problems = []
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


def dwell_s(rng: random.Random, cfg: ArrivalConfig) -> float:
    """Simulated seconds a car stays plugged in."""
    sigma = cfg.dwell_sigma
    mu = math.log(cfg.dwell_mean_s) - sigma * sigma / 2
    return min(cfg.dwell_max_s, max(cfg.dwell_min_s, rng.lognormvariate(mu, sigma)))
