"""The virtual charger's vocabulary, independent of the OCPP version.

Specs (what a charger *is*: frozen, built from a scenario) and state (what it is
doing: EVSEs, transactions, meter readings). The version dialects
(:mod:`simulators.v16`, :mod:`simulators.v201`) translate these into payloads and
reach the charger only through the :class:`ChargerOps` protocol.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from ocppj.versions import OcppVersion
from simulators.clock import SimClock
from simulators.ev import EVState, SupplyKind, SupplySpec
from simulators.firmware import FirmwareFaults, FirmwareOptions, FirmwareUpdater
from simulators.profiles import ChargingProfile, CompositeSchedule, ProfileSet, RateUnit

if TYPE_CHECKING:
    from simulators.local_list import LocalList
    from simulators.logs_upload import LogUploader
    from simulators.reservations import ReservationBook


@dataclass(frozen=True, slots=True)
class ConnectorSpec:
    """One plug of an EVSE: its type (OCPP 2.0.1 ``ConnectorEnumType`` names such as ``cType2``,
    ``cCCS2``, ``cCHAdeMO``) and its maximum power (None: the EVSE's)."""

    type: str = "cType2"
    max_power_w: float | None = None


@dataclass(frozen=True, slots=True)
class EvseSpec:
    """One outlet: AC with 1-3 phases at ``max_current_a``, or DC at ``max_power_w``.

    Limits and meter currents are grid-side amperes per phase at ``grid_voltage_v``;
    a DC EVSE is a three-phase load on the grid and charges the car at ``dc_voltage_v``.
    """

    kind: SupplyKind = SupplyKind.AC
    phases: int = 3
    max_current_a: float = 32.0
    max_power_w: float | None = None
    grid_voltage_v: float = 230.0
    dc_voltage_v: float = 400.0
    connectors: tuple[ConnectorSpec, ...] = (ConnectorSpec(),)  # a car always plugs into the first

    def supply(self) -> SupplySpec:
        if self.kind is SupplyKind.DC:
            return SupplySpec.dc(self.max_power_w or 50_000.0, voltage_v=self.dc_voltage_v)
        return SupplySpec.ac(self.phases, voltage_v=self.grid_voltage_v, max_current_a=self.max_current_a)

    @property
    def grid_phases(self) -> int:
        return 3 if self.kind is SupplyKind.DC else self.phases

    @property
    def rated_current_a(self) -> float:
        """Rating per phase, grid side (DC: its power on three phases)."""
        if self.kind is SupplyKind.DC:
            return (self.max_power_w or 50_000.0) / (3 * self.grid_voltage_v)
        return self.max_current_a


@dataclass(frozen=True, slots=True)
class ChargerSpec:
    """Everything fixed about one virtual charger."""

    station_id: str
    version: OcppVersion
    evses: tuple[EvseSpec, ...] = (EvseSpec(),)
    vendor: str = "OpenSim"
    model: str = "VirtualCharger"
    serial_number: str = ""
    firmware_version: str = "1.0.0"
    meter_interval_s: float = 60.0
    heartbeat_interval_s: float = 0.0  # 0: use the interval the CSMS returns at boot
    node: str | None = None  # feeder node of the balancer topology
    seed: int = 0
    firmware_faults: FirmwareFaults | None = None  # None: the fleet's (Behaviour.firmware)
    configuration: tuple[tuple[str, str], ...] = ()  # 1.6 keys / 2.0.1 "Component/Variable" values


class Status(enum.StrEnum):
    """Connector status; 1.6 names (2.0.1 folds the in-use ones into Occupied)."""

    AVAILABLE = "Available"
    PREPARING = "Preparing"
    CHARGING = "Charging"
    SUSPENDED_EV = "SuspendedEV"
    SUSPENDED_EVSE = "SuspendedEVSE"
    FINISHING = "Finishing"
    UNAVAILABLE = "Unavailable"
    FAULTED = "Faulted"
    RESERVED = "Reserved"


class StopReason(enum.StrEnum):
    """Why a transaction ended; names shared by 1.6 ``reason`` and 2.0.1 ``stoppedReason``."""

    LOCAL = "Local"
    REMOTE = "Remote"
    EV_DISCONNECTED = "EVDisconnected"
    DEAUTHORIZED = "DeAuthorized"
    SOFT_RESET = "SoftReset"
    HARD_RESET = "HardReset"
    UNLOCK = "UnlockCommand"
    OTHER = "Other"
    POWER_LOSS = "PowerLoss"


@dataclass(slots=True)
class Sample:
    """One meter reading of an EVSE."""

    ts: datetime
    register_wh: float
    power_w: float
    current_a: tuple[float, float, float]
    voltage_v: float
    phases: int
    offered_a: float
    soc_percent: float | None


@dataclass(slots=True)
class Tx:
    """A transaction as the charger knows it."""

    local_id: str  # 2.0.1 transactionId; for 1.6 a local reference
    evse_id: int
    id_tag: str
    started_at: datetime  # simulated time (charging profiles, physics)
    meter_start_wh: float
    started_stamp: datetime  # what the charger claims the start time was (``SimClock.stamp``)
    remote_start_id: int | None = None
    csms_id: int | None = None  # 1.6 transactionId, once StartTransaction was answered
    seq_no: int = 0  # next 2.0.1 seqNo
    charging_state: Status = Status.CHARGING
    stop_reason: StopReason | None = None
    deauthorized: bool = False
    reservation_id: int | None = None  # the reservation the session uses up
    sign: Callable[[float, datetime, str], str] | None = None  # OCMF signer of register readings, if any
    total_cost: float | None = None  # the running cost the CSMS told (2.0.1 CostUpdated)


@dataclass(slots=True)
class EvseState:
    """An EVSE (one connector) and what is plugged into it."""

    id: int
    spec: EvseSpec
    supply: SupplySpec
    register_wh: float
    status: Status = Status.AVAILABLE
    operative: bool = True
    faulted: bool = False
    ev: EVState | None = None
    tx: Tx | None = None
    last_step_s: float = 0.0  # simulated seconds of the last physics step
    sent_status: str | None = None  # last status value the CSMS got
    stop_request: StopReason | None = None

    @property
    def free(self) -> bool:
        """Nothing plugged in, operative and not faulted."""
        return self.ev is None and self.operative and not self.faulted


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """Faults per charger, each a Poisson process in wall-clock time (rates per hour)."""

    drop_per_hour: float = 0.0  # connection lost abruptly, reconnect with back-off
    offline_per_hour: float = 0.0  # connection lost and the network stays down a while
    offline_min_s: float = 30.0
    offline_max_s: float = 120.0
    connector_fault_per_hour: float = 0.0  # an EVSE goes Faulted (its session ends)
    connector_fault_min_s: float = 30.0
    connector_fault_max_s: float = 300.0
    duplicate_per_hour: float = 0.0  # reconnect while the old socket is still open
    upload_failure_share: float = 0.0  # share of log uploads that break off half-way (0-1)

    @property
    def total_per_hour(self) -> float:
        return (self.drop_per_hour + self.offline_per_hour + self.connector_fault_per_hour
                + self.duplicate_per_hour)


@dataclass(frozen=True, slots=True)
class Behaviour:
    """How every charger of a fleet behaves on the wire (wall-clock seconds)."""

    call_timeout_s: float = 30.0
    open_timeout_s: float = 10.0
    ws_ping_interval_s: float = 0.0  # 0: no WebSocket pings from the charger
    boot_on_reconnect: bool = False  # a reconnect is not a reboot: no BootNotification
    end_transactions_on_stop: bool = True
    stop_grace_s: float = 10.0
    reconnect_base_s: float = 1.0
    reconnect_max_s: float = 60.0
    transaction_message_attempts: int = 3
    faults: FaultConfig = FaultConfig()
    firmware: FirmwareOptions = field(default_factory=FirmwareOptions)
    signed_meter_values: bool = False  # begin/end readings carry signed OCMF data (simulators.ocmf)


@dataclass
class Settings:
    """The charger's configuration values the CSMS may read and change."""

    heartbeat_interval_s: float
    meter_interval_s: float
    authorize_remote_start: bool = False
    local_authorize_offline: bool = True
    extra: dict[str, str] = field(default_factory=dict)


class ChargerOps(Protocol):
    """What a dialect may ask of the charger while serving CSMS calls."""

    spec: ChargerSpec
    clock: SimClock
    evses: dict[int, EvseState]
    profiles: ProfileSet
    settings: Settings
    uploads: LogUploader  # log uploads in flight and sent
    firmware: FirmwareUpdater
    local_list: LocalList
    reservations: ReservationBook

    @property
    def accepted(self) -> bool: ...

    def remote_start(
        self, evse_id: int | None, id_tag: str, *, remote_start_id: int | None = None,
        profile: ChargingProfile | None = None,
    ) -> EvseState | None: ...

    def remote_stop(self, tx_id: str) -> bool: ...

    def reset(self, *, hard: bool, when_idle: bool) -> bool: ...

    def unlock(self, evse_id: int) -> bool: ...

    def change_availability(self, evse_id: int, operative: bool) -> bool: ...

    def set_profile(self, evse_id: int, profile: ChargingProfile) -> None: ...

    def clear_profiles(self, request: dict[str, Any]) -> bool: ...

    def composite(self, evse_id: int, duration_s: int, unit: RateUnit | None) -> CompositeSchedule: ...

    def send_boot(self) -> None: ...

    def send_heartbeat(self) -> None: ...

    def send_status(self, evse: EvseState) -> None: ...

    def send_meter(self, evse: EvseState, *, transaction_event: bool = True) -> None:
        """Triggered meter values: in the transaction's message if ``transaction_event``
        and a transaction runs (1.6 MeterValues with transactionId, 2.0.1 TransactionEvent),
        else a plain MeterValues."""
        ...

    def enqueue(
        self, action: str, build: Callable[[], dict[str, Any]], *, transactional: bool = False,
        on_answer: Callable[[dict[str, Any]], None] | None = None,
    ) -> None: ...

    def after(self, delay_s: float, fn: Callable[[], None]) -> None: ...

    def install_firmware(self, version: str) -> None:
        """Reboot now and boot running ``version``."""
        ...
