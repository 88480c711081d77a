"""The contract between the composition root and its optional parts (telemetry, MQTT, balancer).

A plugin is ``async def plugin(ctx: PluginContext) -> Cleanup | None``: it reads its settings,
subscribes to the bus, registers metrics, and says what it runs in ``ctx.parts``. It is given
typed ports, never the application object; ``csms.app`` builds the context and picks the
plugins (``csms.app.default_plugins``). This module imports nothing of ``csms.app``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from csms.bus import Bus
from csms.cluster.events import ClusterBus
from csms.cluster.lease import Elector, LocalElector
from csms.config import Settings
from csms.core.ports import ChargerControl, Clock, LimitSender
from csms.core.service import ChargingService
from csms.core.targets import TargetResolver
from csms.metrics import Metrics
from csms.ocpp.registry import SessionRegistry
from csms.store.alarms import SqlAlarms
from csms.store.engine import Database

if TYPE_CHECKING:  # the parts' types only: the parts' packages import this contract, not the reverse
    from csms.alarms.service import AlarmService
    from csms.balancer.service import BalancerService
    from csms.desired_config.service import DesiredConfigService
    from csms.display.service import DisplayService
    from csms.firmware.service import FirmwareService
    from csms.local_lists.service import LocalListService
    from csms.profiles.service import ProfileService
    from csms.reservations.service import ReservationService
    from csms.tariffs.service import TariffService
    from csms.telemetry.influx import InfluxWriter
    from csms.telemetry.mqtt import MqttBridge
    from csms.uploads.service import UploadService

Cleanup = Callable[[], Awaitable[None]]
Spawn = Callable[[Awaitable[None], str], None]
"""Run a background task (named) for the lifetime of the CSMS."""


@dataclass(slots=True)
class Parts:
    """The optional parts running now: each plugin sets its own at start, clears it at cleanup."""

    influx: InfluxWriter | None = None
    mqtt: MqttBridge | None = None
    balancer: BalancerService | None = None
    alarms: AlarmService | None = None
    tariffs: TariffService | None = None
    uploads: UploadService | None = None
    desired_config: DesiredConfigService | None = None
    profiles: ProfileService | None = None
    display: DisplayService | None = None
    firmware: FirmwareService | None = None
    local_lists: LocalListService | None = None
    reservations: ReservationService | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginContext:
    """What a plugin may use of the running CSMS."""

    settings: Settings
    clock: Clock
    bus: Bus
    metrics: Metrics
    service: ChargingService  # live station state and the store
    sessions: SessionRegistry  # the connected stations' sessions
    control: LimitSender  # CSMS-initiated charging limits
    commands: ChargerControl  # every CSMS-initiated command, typed, and the raw call
    db: Database  # the store's database: a feature builds its own store part on it
    targets: TargetResolver  # {stations} | {group} | {site} -> station ids
    spawn: Spawn
    parts: Parts
    alarm_store: SqlAlarms | None = None  # the alarm tables (None: a store without them)
    public_base_url: str = ""  # http(s) base stations use to reach the HTTP server ("": not known)
    elector: Elector = field(default_factory=lambda: LocalElector("local"))  # who runs each singleton
    # every core's events, for an elected loop (the local bus's on one node; csms.cluster.events)
    cluster_bus: ClusterBus | None = None
    # whether another core node serves a station now (never, on one node)
    elsewhere: Callable[[str], bool] = field(default=lambda _station_id: False)

    def all_events(self) -> Bus | ClusterBus:
        """Subscriptions that see the events of every core's stations (an elected loop's)."""
        return self.cluster_bus if self.cluster_bus is not None else self.bus

    def elected(self, name: str) -> Callable[[], bool]:
        """What the singleton loop ``name`` asks before each tick: does this node run it now?"""
        return self.elector.lease(name).held


Plugin = Callable[[PluginContext], Awaitable[Cleanup | None]]
