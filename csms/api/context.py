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
from csms.store.sites import SqlSites

if TYPE_CHECKING:
    from csms.api.alarms import AlarmsView
    from csms.api.console.live import ConsoleHub
    from csms.api.local_lists import IdTagRegistry, LocalListsView
    from csms.api.reservations import ReservationsView
    from csms.api.uploads import UploadsView
    from csms.cluster.core_node import BrokerCore
    from csms.cluster.lease import Elector
    from csms.desired_config.service import DesiredConfigService
    from csms.display.service import DisplayService
    from csms.firmware.service import FirmwareService
    from csms.profiles.service import ProfileService
    from csms.tariffs.service import TariffService


class BalancerView(Protocol):
    """What the feeder routes need of the load balancer (``csms.balancer.service.BalancerService``)."""

    def feeders_view(self, *, rounded: bool = False) -> list[dict[str, Any]]: ...

    def set_limit(self, node_id: str, limit_a: float | None) -> None: ...

    async def rebalance(self) -> object: ...

    def profiles_sent(self, station_id: str) -> list[tuple[int, int, str, float, int]]: ...


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
    sites: SqlSites | None = None  # sites, groups, connector specs (None: a store without them)
    tariffs: TariffService | None = None  # None: tariffs are disabled
    uploads: UploadsView | None = None  # None: uploads are disabled
    desired_config: DesiredConfigService | None = None  # None: the plugin is not running
    profiles: ProfileService | None = None  # charging profiles by hand
    display: DisplayService | None = None  # 2.0.1 display messages and monitoring
    firmware: FirmwareService | None = None  # None: firmware campaigns are disabled
    local_lists: LocalListsView | None = None  # None: local lists are disabled
    id_tags: IdTagRegistry | None = None  # id tags with their tag group (None: the store's plain id tags)
    reservations: ReservationsView | None = None  # None: reservations are disabled
    cluster: Elector | None = None  # who runs each singleton loop (csms.cluster)
    node: BrokerCore | None = None  # a core node of a cluster on a broker: where every station is served
