"""What the API needs from the running CSMS, gathered in one object (set by the composition root)."""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass
from typing import TYPE_CHECKING, Any, Protocol

from csms.bus import Bus
from csms.config import Settings
from csms.core.service import ChargingService
from csms.metrics import Metrics
from csms.ocpp.control import OcppControl
from csms.ocpp.registry import SessionRegistry
from csms.security.ca import CaProvider

if TYPE_CHECKING:
    from csms.api.alarms import AlarmsView
    from csms.api.console.live import ConsoleHub
    from csms.api.reservations import ReservationsView


class BalancerView(Protocol):
    """What the feeder routes need of the load balancer (``csms.balancer.service.BalancerService``)."""

    def feeders_view(self, *, rounded: bool = False) -> list[dict[str, Any]]: ...

    def set_limit(self, node_id: str, limit_a: float | None) -> None: ...

    async def rebalance(self) -> object: ...


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    service: ChargingService
    control: OcppControl
    registry: SessionRegistry
    metrics: Metrics
    bus: Bus
    _: KW_ONLY
    balancer: BalancerView | None = None  # None: load balancing is not configured
    ca: CaProvider | None = None  # None: the certificate authority is disabled
    record_messages: bool = True  # the console keeps each station's recent OCPP messages
    console: ConsoleHub | None = None  # set when the console's routes are created
    alarms: AlarmsView | None = None  # None: alarms are disabled
    reservations: ReservationsView | None = None  # None: reservations are disabled
