"""Ports: the small interfaces the core needs from the outside world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any, Protocol

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    ConfigurationReport,
    ResetKind,
)
from csms.core.model import (
    ConnectorState,
    IdTag,
    Station,
    StationInfo,
    Transaction,
)
from csms.core.station_events import StationEventStore
from ocppj.versions import OcppVersion


class Clock(Protocol):
    """Injected time, so tests control it."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real clock, timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class StopResult:
    """What the store did with a stop: the record, and whether it was new or a replay."""

    transaction: Transaction
    replay: bool
    orphan: bool


@dataclass(frozen=True, slots=True)
class EventResult:
    """Outcome of applying one 2.0.1 TransactionEvent."""

    transaction: Transaction
    replay: bool
    created: bool
    ended_now: bool


@dataclass(frozen=True, slots=True)
class TransactionEventRecord:
    """A TransactionEvent in domain terms (2.0.1; also how offline 1.6 data could be fed)."""

    station_id: str
    tx_id: str
    event_type: str  # Started | Updated | Ended
    seq_no: int
    ts: datetime
    trigger_reason: str
    evse_id: int
    connector_id: int
    id_tag: str | None
    meter_wh: float | None
    stopped_reason: str | None
    offline: bool


class StationStore(Protocol):
    """Durable stations, connector states, device variables and id tags."""

    async def get_station(self, station_id: str) -> Station | None: ...
    async def list_stations(self) -> list[Station]: ...
    async def station_profiles(self) -> dict[str, int]: ...  # every registered id: its security profile
    async def upsert_station(
        self, station_id: str, *, security_profile: int | None = None,
        password_hash: str | None = None,
    ) -> Station: ...
    async def delete_station(self, station_id: str) -> bool: ...
    async def get_password_hash(self, station_id: str) -> str | None: ...
    async def record_boot(
        self, station_id: str, protocol: OcppVersion, info: StationInfo, ts: datetime
    ) -> None: ...
    async def save_seen(self, seen: Mapping[str, datetime]) -> None: ...
    async def save_connectors(self, states: Sequence[tuple[str, ConnectorState]]) -> None: ...
    async def load_connectors(self) -> dict[str, list[ConnectorState]]: ...
    async def save_variables(self, rows: Sequence[tuple[str, str, str]]) -> None: ...  # station, name, value
    async def load_variables(self) -> dict[str, dict[str, str]]: ...

    async def get_id_tag(self, id_tag: str) -> IdTag | None: ...
    async def put_id_tag(self, tag: IdTag) -> bool: ...
    async def delete_id_tag(self, id_tag: str) -> bool: ...
    async def list_id_tags(self) -> list[IdTag]: ...


class TxOrder(Enum):
    """Orders of a transaction listing by start time; the store key breaks ties. Without an
    order, the newest received come first."""

    STARTED_DESC = "started_at:desc"
    STARTED_ASC = "started_at:asc"


@dataclass(frozen=True, slots=True)
class TimeRange:
    """``since <= t < until``; an open end is None."""

    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class TxKey:
    """Where a page of transactions in a ``TxOrder`` ended: the last row's start and identity.
    Sessions without a start time come after all others in either order."""

    started_at: datetime | None
    station_id: str
    tx_id: str

    @classmethod
    def of(cls, tx: Transaction) -> TxKey:
        return cls(tx.started_at, tx.station_id, tx.tx_id)


class TransactionStore(Protocol):
    """Durable transactions; the rules they follow are ``csms.core.transactions``'."""

    async def start_transaction(
        self, station_id: str, *, evse_id: int, connector_id: int, id_tag: str | None,
        meter_start_wh: float | None, ts: datetime, flags: tuple[str, ...] = (),
    ) -> tuple[Transaction, bool]: ...
    async def stop_transaction(
        self, station_id: str, tx_id: str, *, meter_stop_wh: float | None, ts: datetime,
        reason: str | None, id_tag: str | None,
    ) -> StopResult: ...
    async def apply_transaction_event(self, record: TransactionEventRecord) -> EventResult: ...
    async def get_transaction(self, station_id: str, tx_id: str) -> Transaction | None: ...
    async def list_transactions(
        self, *, station_id: str | None = None, active: bool | None = None, limit: int = 500,
        started: TimeRange | None = None, order: TxOrder | None = None, after: TxKey | None = None,
    ) -> list[Transaction]: ...


class SecurityEventStore(Protocol):
    """The security events stations reported."""

    async def save_security_event(
        self, station_id: str, kind: str, ts: datetime, tech_info: str | None
    ) -> None: ...
    async def list_security_events(self, station_id: str | None = None) -> list[dict[str, Any]]: ...


class Store(StationStore, TransactionStore, SecurityEventStore, StationEventStore, Protocol):
    """Durable state. Every write method commits before it returns."""

    async def close(self) -> None: ...


class LimitSender(Protocol):
    """What the balancer asks of stations: a charging limit on one EVSE."""

    async def set_limit(self, station_id: str, evse_id: int, limit: ChargingLimit) -> CommandResult: ...


class StationCommands(LimitSender, Protocol):
    """Domain commands to a connected station, sent in its own OCPP version.

    Each raises a ``ControlError`` when no valid answer came (``csms.errors``), and ValueError
    for a command the station's version cannot carry (then nothing is sent).
    """

    def protocol_of(self, station_id: str) -> OcppVersion | None: ...
    def action_name(self, station_id: str, kind: CommandKind) -> str | None: ...

    async def clear_limit(self, station_id: str, profile_id: int) -> CommandResult: ...
    async def remote_start(
        self, station_id: str, id_tag: str, *, evse_id: int = 1, remote_start_id: int = 1
    ) -> CommandResult: ...
    async def remote_stop(self, station_id: str, tx_id: str) -> CommandResult: ...
    async def reset(self, station_id: str, kind: ResetKind) -> CommandResult: ...
    async def unlock(self, station_id: str, *, evse_id: int = 1, connector_id: int = 1) -> CommandResult: ...
    async def change_availability(
        self, station_id: str, *, operative: bool, evse_id: int = 0
    ) -> CommandResult: ...
    async def trigger_message(
        self, station_id: str, message: str, *, evse_id: int | None = None
    ) -> CommandResult: ...
    async def read_configuration(self, station_id: str, *, request_id: int = 1) -> ConfigurationReport: ...
    async def set_password(
        self, station_id: str, password: str, *, timeout: float | None = None
    ) -> CommandResult: ...
    async def install_certificate(
        self, station_id: str, kind: CertificateKind, pem: str, *, timeout: float | None = None
    ) -> CommandResult: ...
    async def renew_certificate(self, station_id: str, *, timeout: float | None = None) -> CommandResult: ...
    async def update_firmware(
        self, station_id: str, location: str, retrieve_at: str, *, request_id: int = 1
    ) -> CommandResult: ...
    async def upload_log(self, station_id: str, location: str, *, request_id: int = 1) -> CommandResult: ...


class ChargerControl(StationCommands, Protocol):
    """``StationCommands`` plus the raw call, kept for the operator API's raw action route."""

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]: ...
