"""Ports: the small interfaces the core needs from the outside world."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from csms.core.model import (
    ConnectorState,
    IdTag,
    Station,
    StationInfo,
    Transaction,
)
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


class Store(Protocol):
    """Durable state. Every write method commits before it returns."""

    async def get_station(self, station_id: str) -> Station | None: ...
    async def list_stations(self) -> list[Station]: ...
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
        self, *, station_id: str | None = None, active: bool | None = None, limit: int = 500
    ) -> list[Transaction]: ...
    async def save_security_event(
        self, station_id: str, kind: str, ts: datetime, tech_info: str | None
    ) -> None: ...
    async def list_security_events(self, station_id: str | None = None) -> list[dict[str, Any]]: ...
    async def close(self) -> None: ...


class ChargerControl(Protocol):
    """Send CSMS-initiated calls to a connected station (implemented by the OCPP adapter)."""

    def protocol_of(self, station_id: str) -> OcppVersion | None: ...

    async def call(
        self, station_id: str, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]: ...
