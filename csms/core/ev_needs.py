"""What an EV told the CSMS it needs (2.0.1 NotifyEVChargingNeeds), for the balancer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class EvNeeds:
    """One EVSE's EV: when it leaves, how much energy it wants, and the most current it takes."""

    station_id: str
    evse_id: int
    departure: datetime | None
    energy_wh: float | None
    max_current_a: float | None
