"""The CSMS's rules, protocol-neutral: registration, boot, authorisation, transactions, status.

Adapters call these methods with domain values; the service talks to the ``Store``
port and publishes domain events on the bus. Per-message state (status, last seen,
latest meter readings) lives in memory and is written behind in batches; everything
that bills (transactions) is committed before the method returns.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from csms.core.device_report import ReportedVariable, entries
from csms.core.events import (
    Event,
    MeterSampled,
    SecurityEventReported,
    StationBooted,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.model import (
    AuthResult,
    AuthStatus,
    ConnectorState,
    IdTag,
    MeterReading,
    MeterSample,
    Station,
    StationInfo,
    Transaction,
)
from csms.core.ports import Clock, EventResult, StopResult, Store, TransactionEventRecord
from ocppj.versions import OcppVersion

log = logging.getLogger(__name__)

MAX_VARIABLES = 5000  # device variables kept per station (a full 2.0.1 base report has a few hundred)
MAX_KEY = 255  # the key column's size (schema limits give at most ~235 before escaping)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceSettings:
    """Policy knobs of the core."""

    auto_register: bool = False
    accept_unknown_tags: bool = False
    heartbeat_interval_s: int = 300


@dataclass(frozen=True, slots=True)
class BootDecision:
    accepted: bool
    interval_s: int


@dataclass(slots=True)
class LiveStation:
    """In-memory view of a station, for the API and console."""

    station_id: str
    protocol: OcppVersion | None = None
    connected: bool = False
    info: StationInfo | None = None
    last_seen_at: datetime | None = None
    connectors: dict[tuple[int, int], ConnectorState] = field(default_factory=dict)
    last_sample: dict[tuple[int, int], MeterSample] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)


class ChargingService:
    """Protocol-neutral use cases the OCPP adapters call."""

    def __init__(
        self, store: Store, publish: Callable[[Event], None], clock: Clock, settings: ServiceSettings,
        wants: Callable[[type[Event]], bool] | None = None,
    ) -> None:
        self.store = store
        self.publish = publish
        self.wants = wants or (lambda _cls: True)
        self.clock = clock
        self.settings = settings
        self.live: dict[str, LiveStation] = {}
        self._dirty_connectors: dict[tuple[str, int, int], ConnectorState] = {}
        self._dirty_seen: dict[str, datetime] = {}
        self._dirty_variables: dict[tuple[str, str], str] = {}
        self._meter_last: dict[tuple[str, str], float] = {}

    # --- registration -------------------------------------------------------------------
    async def load(self) -> None:
        """Fill the in-memory view from the store (start-up)."""
        for st in await self.store.list_stations():
            self.live[st.station_id] = LiveStation(
                st.station_id, st.protocol, False, st.info, st.last_seen_at
            )
        for station_id, states in (await self.store.load_connectors()).items():
            if (live := self.live.get(station_id)) is not None:  # rows of a deleted station stay out
                for s in states:
                    live.connectors[(s.evse_id, s.connector_id)] = s
        for station_id, variables in (await self.store.load_variables()).items():
            if (live := self.live.get(station_id)) is not None:
                live.variables.update(variables)

    async def admit(self, station_id: str) -> Station | None:
        """The registered station, auto-registering when allowed; None means refuse."""
        station = await self.store.get_station(station_id)
        if station is None and self.settings.auto_register:
            station = await self.store.upsert_station(station_id)
            self.live.setdefault(station_id, LiveStation(station_id))
        return station

    def connected(self, station_id: str, protocol: OcppVersion) -> None:
        live = self.live.setdefault(station_id, LiveStation(station_id))
        live.protocol = protocol
        live.connected = True
        self.seen(station_id)

    def disconnected(self, station_id: str) -> None:
        live = self.live.get(station_id)
        if live is not None:
            live.connected = False

    def seen(self, station_id: str) -> datetime:
        now = self.clock.now()
        live = self.live.get(station_id)
        if live is not None:
            live.last_seen_at = now
        self._dirty_seen[station_id] = now
        return now

    async def boot(self, station_id: str, protocol: OcppVersion, info: StationInfo) -> BootDecision:
        """Record a BootNotification; registered stations are accepted."""
        now = self.seen(station_id)
        await self.store.record_boot(station_id, protocol, info, now)
        live = self.live.setdefault(station_id, LiveStation(station_id))
        live.info = info
        live.protocol = protocol
        self.publish(StationBooted(station_id=station_id, info=info, accepted=True))
        return BootDecision(True, self.settings.heartbeat_interval_s)

    # --- authorisation ------------------------------------------------------------------
    async def authorize(self, id_tag: str) -> AuthResult:
        """Look the token up: status, expiry and parent; unknown per settings."""
        tag = await self.store.get_id_tag(id_tag)
        if tag is None:
            if self.settings.accept_unknown_tags:
                return AuthResult(AuthStatus.ACCEPTED)
            return AuthResult(AuthStatus.UNKNOWN)
        return self._judge(tag)

    def _judge(self, tag: IdTag) -> AuthResult:
        if tag.status is AuthStatus.ACCEPTED and tag.expiry is not None and tag.expiry <= self.clock.now():
            return AuthResult(AuthStatus.EXPIRED, tag.expiry, tag.parent)
        return AuthResult(tag.status, tag.expiry, tag.parent)

    async def put_id_tag(self, tag: IdTag) -> bool:
        return await self.store.put_id_tag(tag)

    # --- status and meter values --------------------------------------------------------
    def status(
        self, station_id: str, evse_id: int, connector_id: int, status: str,
        error_code: str | None, ts: datetime | None,
    ) -> None:
        """Record a connector status (written behind) and publish it."""
        state = ConnectorState(evse_id, connector_id, status, error_code, ts or self.clock.now())
        live = self.live.setdefault(station_id, LiveStation(station_id))
        live.connectors[(evse_id, connector_id)] = state
        self._dirty_connectors[(station_id, evse_id, connector_id)] = state
        if self.wants(StatusChanged):
            self.publish(
                StatusChanged(
                    station_id=station_id, evse_id=evse_id, connector_id=connector_id,
                    status=status, error_code=error_code,
                )
            )

    def meter(self, samples: Sequence[MeterSample]) -> None:
        """Keep the latest readings and publish them for telemetry and balancing."""
        wanted = self.wants(MeterSampled)
        for sample in samples:
            live = self.live.get(sample.station_id)
            if live is not None:
                live.last_sample[(sample.evse_id, sample.connector_id)] = sample
            if sample.transaction_id is not None:
                energy = sample.energy_wh
                if energy is not None:
                    self._meter_last[(sample.station_id, sample.transaction_id)] = energy
            if wanted:
                self.publish(MeterSampled(station_id=sample.station_id, sample=sample))

    def device_report(self, station_id: str, report: Sequence[ReportedVariable]) -> None:
        """Keep the variables a station reported (2.0.1 NotifyReport); written behind, like
        connector states. At most ``MAX_VARIABLES`` names per station: later new names are
        dropped (and logged), values of known names still change."""
        live = self.live.setdefault(station_id, LiveStation(station_id))
        variables, dirty, dropped = live.variables, self._dirty_variables, 0
        for key, value in entries(report):
            if len(key) > MAX_KEY or (key not in variables and len(variables) >= MAX_VARIABLES):
                dropped += 1
                continue
            if variables.get(key) != value:
                variables[key] = dirty[(station_id, key)] = value
        if dropped:
            log.warning("device report of %s cut: %d variables dropped (key over %d characters, or "
                        "over %d per station), %d kept", station_id, dropped, MAX_KEY, MAX_VARIABLES,
                        len(variables))

    def forget(self, station_id: str) -> None:
        """Drop a deregistered station from memory, with its writes not flushed yet (so the next
        flush does not bring its rows back)."""
        self.live.pop(station_id, None)
        for connector in [k for k in self._dirty_connectors if k[0] == station_id]:
            del self._dirty_connectors[connector]
        for variable in [k for k in self._dirty_variables if k[0] == station_id]:
            del self._dirty_variables[variable]
        self._dirty_seen.pop(station_id, None)

    def live_energy_wh(self, tx: Transaction) -> float | None:
        """Energy so far of a transaction: the ended one's register difference, else the latest
        register reading of its transaction or EVSE (1.6 and 2.0.1 alike) minus its start."""
        if tx.energy_wh is not None:
            return tx.energy_wh
        if tx.meter_start_wh is None or not tx.active:
            return None
        last = self._meter_last.get((tx.station_id, tx.tx_id))
        newest = self._evse_reading(tx)
        if newest is not None:
            last = newest
        return None if last is None else last - tx.meter_start_wh

    def _evse_reading(self, tx: Transaction) -> float | None:
        """The newest energy register reading of the transaction's EVSE taken since it started."""
        live = self.live.get(tx.station_id)
        if live is None:
            return None
        best: MeterSample | None = None
        for (evse_id, _c), sample in live.last_sample.items():
            if evse_id != tx.evse_id or sample.energy_wh is None:
                continue
            if sample.transaction_id not in (None, tx.tx_id):
                continue
            if tx.started_at is not None and sample.ts < tx.started_at:
                continue
            if best is None or sample.ts > best.ts:
                best = sample
        return None if best is None else best.energy_wh

    async def flush(self) -> None:
        """Write behind: connector states, last-seen times and device variables, a batch each.

        On failure the batch goes back (newer values win) and the error propagates.
        """
        if self._dirty_connectors:
            pending, self._dirty_connectors = self._dirty_connectors, {}
            try:
                await self.store.save_connectors([(k[0], v) for k, v in pending.items()])
            except BaseException:
                self._dirty_connectors = {**pending, **self._dirty_connectors}
                raise
        if self._dirty_seen:
            seen, self._dirty_seen = self._dirty_seen, {}
            try:
                await self.store.save_seen(seen)
            except BaseException:
                self._dirty_seen = {**seen, **self._dirty_seen}
                raise
        if self._dirty_variables:
            variables, self._dirty_variables = self._dirty_variables, {}
            try:
                await self.store.save_variables([(sid, name, v) for (sid, name), v in variables.items()])
            except BaseException:
                self._dirty_variables = {**variables, **self._dirty_variables}
                raise

    async def flush_forever(self, interval_s: float = 1.0) -> None:
        """Flush every ``interval_s``; a failing store is logged and retried, never fatal."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.flush()
            except Exception as exc:
                log.error("write-behind flush failed; will retry: %s", exc)

    # --- transactions -------------------------------------------------------------------
    async def start_transaction(
        self, station_id: str, *, connector_id: int, id_tag: str, meter_start_wh: float,
        ts: datetime,
    ) -> tuple[Transaction, AuthResult]:
        """1.6 StartTransaction: idempotent on its natural key, committed before returning."""
        auth = await self.authorize(id_tag)
        flags = () if auth.status is AuthStatus.ACCEPTED else ("auth_" + auth.status.value.lower(),)
        tx, created = await self.store.start_transaction(
            station_id, evse_id=connector_id, connector_id=connector_id, id_tag=id_tag,
            meter_start_wh=meter_start_wh, ts=ts, flags=flags,
        )
        if created:
            self.publish(TransactionStarted(station_id=station_id, transaction=tx))
        return tx, auth

    async def stop_transaction(
        self, station_id: str, tx_id: str, *, meter_stop_wh: float, ts: datetime,
        reason: str | None, id_tag: str | None,
    ) -> tuple[StopResult, AuthResult | None]:
        """1.6 StopTransaction: always acknowledged; replays change nothing."""
        result = await self.store.stop_transaction(
            station_id, tx_id, meter_stop_wh=meter_stop_wh, ts=ts, reason=reason, id_tag=id_tag
        )
        if not result.replay:
            self._meter_last.pop((station_id, tx_id), None)
            self.publish(TransactionEnded(station_id=station_id, transaction=result.transaction))
        auth = await self.authorize(id_tag) if id_tag else None
        return result, auth

    async def transaction_event(
        self, record: TransactionEventRecord, readings: Sequence[MeterReading] = (), *,
        id_token: str | None = None,
    ) -> tuple[EventResult, AuthResult | None]:
        """2.0.1 TransactionEvent: deduplicated on seqNo, committed before returning.

        The ``readings`` it carried are published as samples of the transaction's EVSE (events
        after ``Started`` usually omit it); ``id_token``, when given, is looked up.
        """
        result = await self.store.apply_transaction_event(record)
        if not result.replay:
            tx = result.transaction
            if result.created:
                self.publish(TransactionStarted(station_id=record.station_id, transaction=tx))
            if result.ended_now:
                self.publish(TransactionEnded(station_id=record.station_id, transaction=tx))
            if readings:
                evse_id, connector_id = (
                    (record.evse_id, record.connector_id) if record.evse_id == tx.evse_id
                    else (tx.evse_id, tx.connector_id)
                )
                self.meter([
                    MeterSample(record.station_id, evse_id, connector_id, ts, values, record.tx_id)
                    for ts, values in readings
                ])
            if result.ended_now:
                self._meter_last.pop((record.station_id, record.tx_id), None)
        auth = await self.authorize(id_token) if id_token is not None else None
        return result, auth

    # --- security -----------------------------------------------------------------------
    async def security_event(self, station_id: str, kind: str, ts: datetime, tech_info: str | None) -> None:
        await self.store.save_security_event(station_id, kind, ts, tech_info)
        self.publish(SecurityEventReported(station_id=station_id, kind=kind, tech_info=tech_info))

