"""What the API needs from the running CSMS, gathered in one object (set by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from csms.bus import Bus
from csms.config import Settings
from csms.core.service import ChargingService
from csms.metrics import Metrics
from csms.ocpp.control import OcppControl
from csms.ocpp.registry import SessionRegistry


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    service: ChargingService
    control: OcppControl
    registry: SessionRegistry
    metrics: Metrics
    bus: Bus
    extras: dict[str, Any] = field(default_factory=dict)  # optional parts: balancer, telemetry
