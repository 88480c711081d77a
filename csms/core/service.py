"""The CSMS's rules, protocol-neutral: registration, boot, authorisation, transactions, status.

Adapters call these methods with domain values; the service talks to the ``Store``
port and publishes domain events on the bus. Per-message state (status, last seen,
latest meter readings) and station events live in memory and are written behind in
batches; everything that bills (transactions, their signed meter values) is committed
before the method returns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from csms.core.clock_offset import ClockOffsets
from csms.core.device_report import ReportedVariable, entries
from csms.core.ev_needs import EvNeeds
from csms.core.events import (
    ClockOffsetMeasured,
    Event,
    MeterSampled,
    ReservationConsumed,
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
from csms.core.registers import RegisterFeed
from csms.core.station_events import SignedMeterValue, StationEventLog
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
    offline_after_heartbeats: float = 3.0  # no traffic for this many heartbeat intervals: offline
    clock_offset_report_s: float = 5.0  # publish ClockOffsetMeasured when the offset moves more

    @property
    def offline_after_s(self) -> float:
        return self.offline_after_heartbeats * self.heartbeat_interval_s


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
    last_seen_at: datetime | None = None  # as loaded or last flushed; see ``last_seen``
    seen_s: float = 0.0  # wall-clock epoch seconds of the latest inbound frame or pong (set by the session)
    flushed_s: float = 0.0  # ``seen_s`` as last handed to the write-behind
    connectors: dict[tuple[int, int], ConnectorState] = field(default_factory=dict)
    last_sample: dict[tuple[int, int], MeterSample] = field(default_factory=dict)
    variables: dict[str, str] = field(default_factory=dict)

    def touch(self, now_s: float) -> None:
        """Traffic from the station at wall-clock ``now_s`` (a float store, nothing else)."""
        self.seen_s = now_s

    def last_seen(self) -> datetime | None:
        """The latest of the persisted last-seen time and the latest traffic."""
        at = self.last_seen_at
        if self.seen_s and (at is None or self.seen_s > at.timestamp()):
            return datetime.fromtimestamp(self.seen_s, UTC)
        return at

    def online(self, now_s: float, offline_after_s: float) -> bool:
        """Connected and heard from within ``offline_after_s``."""
        seen = self.last_seen()
        return self.connected and seen is not None and now_s - seen.timestamp() < offline_after_s


class ChargingService:
    """Protocol-neutral use cases the OCPP adapters call."""

    def __init__(
        self, store: Store, publish: Callable[[Event], None], clock: Clock, settings: ServiceSettings,
        wants: Callable[[type[Event]], bool] | None = None, wall_s: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.wall_s = wall_s  # what sessions stamp traffic with (epoch seconds)
        self.publish = publish
        self.wants = wants or (lambda _cls: True)
        self.clock = clock
        self.settings = settings
        self.live: dict[str, LiveStation] = {}
        self._dirty_connectors: dict[tuple[str, int, int], ConnectorState] = {}
        self._dirty_seen: dict[str, datetime] = {}
        self._dirty_variables: dict[tuple[str, str], str] = {}
        self._meter_last: dict[tuple[str, str], float] = {}
        self.events = StationEventLog(store, publish, clock.now)
        self._ev_needs: dict[tuple[str, int], EvNeeds] = {}
        self.clock_offsets = ClockOffsets(report_change_s=settings.clock_offset_report_s)
        # the price of an ended transaction incl. VAT, when tariffs are on (set by their plugin)
        self.pricer: Callable[[Transaction], Awaitable[Decimal | None]] | None = None
        # every transaction's energy register readings, for the part that prices (set by its plugin)
        self.registers: RegisterFeed | None = None

    async def total_cost(self, tx: Transaction) -> Decimal | None:
        """The ended transaction's price incl. VAT; None without tariffs or when pricing failed."""
        if self.pricer is None:
            return None
        try:
            return await self.pricer(tx)
        except Exception:
            log.exception("pricing failed: %s transaction %s", tx.station_id, tx.tx_id)
            return None

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

    def connected(self, station_id: str, protocol: OcppVersion) -> LiveStation:
        """A session opened; its traffic stamps the returned ``LiveStation`` (``touch``)."""
        live = self.live.setdefault(station_id, LiveStation(station_id))
        live.protocol = protocol
        live.connected = True
        self.seen(station_id)
        return live

    def disconnected(self, station_id: str) -> None:
        live = self.live.get(station_id)
        if live is not None:
            live.connected = False

    def seen(self, station_id: str) -> datetime:
        now = self.clock.now()
        live = self.live.get(station_id)
        if live is not None:
            live.last_seen_at = now
            live.seen_s = max(live.seen_s, now.timestamp())
        self._dirty_seen[station_id] = now
        return now

    def online(self, live: LiveStation) -> bool:
        """Connected and heard from within ``offline_after_heartbeats`` heartbeat intervals."""
        return live.online(self.wall_s(), self.settings.offline_after_s)

    def _clock_sample(self, station_id: str, station_time: datetime | None) -> None:
        """One timestamp the station sent, against the receive time; publishes a noticeable change."""
        if station_time is None:
            return
        offset = self.clock_offsets.add(station_id, station_time, self.clock.now())
        if offset is not None and self.wants(ClockOffsetMeasured):
            self.publish(ClockOffsetMeasured(station_id=station_id, offset_s=round(offset, 3)))

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
        self._clock_sample(station_id, ts)
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

    def meter(self, samples: Sequence[MeterSample], *, clock_sample: bool = True) -> None:
        """Keep the latest readings, queue transactions' registers for ``registers`` and publish
        the samples (``MeterSampled``) when someone subscribes (telemetry, balancing).

        The last sample's timestamp counts towards the station's clock offset unless
        ``clock_sample`` is False (readings the station held back while offline)."""
        if clock_sample and samples:
            last = samples[-1]
            self._clock_sample(last.station_id, last.ts)
        wanted = self.wants(MeterSampled)
        registers = self.registers
        for sample in samples:
            live = self.live.get(sample.station_id)
            if live is not None:
                live.last_sample[(sample.evse_id, sample.connector_id)] = sample
            if sample.transaction_id is not None:
                energy = sample.energy_wh
                if energy is not None:
                    key = (sample.station_id, sample.transaction_id)
                    self._meter_last[key] = energy
                    if registers is not None:
                        registers.add(key, sample.ts, energy)
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
        for evse in [k for k in self._ev_needs if k[0] == station_id]:
            del self._ev_needs[evse]
        self.clock_offsets.forget(station_id)

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

        Last-seen times come from the traffic stamps (``LiveStation.touch``) of every connected
        station, one row per station however many frames it sent since the last flush.
        On failure the batch goes back (newer values win) and the error propagates.
        """
        self._collect_seen()
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
        await self.events.flush()

    def _collect_seen(self) -> None:
        dirty = self._dirty_seen
        for live in self.live.values():
            if live.seen_s > live.flushed_s:
                live.flushed_s = live.seen_s
                live.last_seen_at = dirty[live.station_id] = datetime.fromtimestamp(live.seen_s, UTC)

    async def deregistered(self) -> list[str]:
        """Stations in memory the store no longer has (removed by another process, e.g. the CLI);
        they are forgotten here and returned so their sessions can be closed."""
        before = list(self.live)  # what was in memory before the read began was in the store by then
        registered = set(await self.store.station_profiles())  # ids only: cheap at 100,000 stations
        gone = [sid for sid in before if sid not in registered and sid in self.live]
        for sid in gone:
            self.forget(sid)
        return gone

    async def flush_forever(
        self, interval_s: float = 1.0, *,
        on_deregistered: Callable[[list[str]], Awaitable[None]] | None = None, registry_every: int = 5,
    ) -> None:
        """Flush every ``interval_s``; a failing store is logged and retried, never fatal.

        With ``on_deregistered``, every ``registry_every``-th flush also looks for stations removed
        from the store by another process and hands their ids to it (to close their sessions).
        """
        rounds = 0
        while True:
            await asyncio.sleep(interval_s)
            rounds += 1
            try:
                await self.flush()
                if on_deregistered is not None and rounds % registry_every == 0:
                    gone = await self.deregistered()
                    if gone:
                        log.info("stations removed from the registry: %s", ", ".join(gone[:20]))
                        await on_deregistered(gone)
            except Exception as exc:
                log.error("write-behind flush failed; will retry: %s", exc)

    # --- transactions -------------------------------------------------------------------
    async def start_transaction(
        self, station_id: str, *, connector_id: int, id_tag: str, meter_start_wh: float,
        ts: datetime,
    ) -> tuple[Transaction, AuthResult]:
        """1.6 StartTransaction: idempotent on its natural key, committed before returning."""
        self._clock_sample(station_id, ts)
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
        self._clock_sample(station_id, ts)
        result = await self.store.stop_transaction(
            station_id, tx_id, meter_stop_wh=meter_stop_wh, ts=ts, reason=reason, id_tag=id_tag
        )
        if not result.replay:
            self._meter_last.pop((station_id, tx_id), None)
            self._ev_needs.pop((station_id, result.transaction.evse_id), None)
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
        if not record.offline:
            self._clock_sample(record.station_id, record.ts)
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
                ], clock_sample=False)
            if result.ended_now:
                self._meter_last.pop((record.station_id, record.tx_id), None)
                self._ev_needs.pop((record.station_id, tx.evse_id), None)
        auth = await self.authorize(id_token) if id_token is not None else None
        return result, auth

    def reservation_used(self, station_id: str, reservation_id: object, tx_id: str) -> None:
        """A transaction message named a reservation: published (after the transaction committed)
        for the reservations' owner; an id that is not an integer is ignored."""
        if isinstance(reservation_id, int) and not isinstance(reservation_id, bool):
            self.publish(ReservationConsumed(station_id=station_id, reservation_id=reservation_id,
                                             tx_id=tx_id))

    # --- security -----------------------------------------------------------------------
    async def security_event(self, station_id: str, kind: str, ts: datetime, tech_info: str | None) -> None:
        await self.store.save_security_event(station_id, kind, ts, tech_info)
        self.publish(SecurityEventReported(station_id=station_id, kind=kind, tech_info=tech_info))


    # --- station events, signed meter values, EV needs ------------------------------------
    def report(
        self, station_id: str, action: str, data: Mapping[str, object], station_time: datetime | None
    ) -> None:
        """Keep a station->CSMS message as a station event (written behind, see ``StationEventLog``)."""
        self.events.record(station_id, action, data, station_time)

    async def keep_signed(self, values: Sequence[SignedMeterValue]) -> None:
        """Store signed meter values of a transaction message; committed before returning."""
        if values:
            await self.store.save_signed_meter_values(values)

    def keep_signed_later(self, values: Sequence[SignedMeterValue]) -> None:
        """Signed meter values of a MeterValues message: written at the next flush."""
        if values:
            self.events.record_signed(values)

    def ev_needs(self, needs: EvNeeds) -> None:
        """Remember what the EV on an EVSE needs, until its transaction ends."""
        self._ev_needs[(needs.station_id, needs.evse_id)] = needs

    def ev_needs_of(self, station_id: str, evse_id: int) -> EvNeeds | None:
        return self._ev_needs.get((station_id, evse_id))

    def ev_max_current_a(self, station_id: str, evse_id: int) -> float | None:
        """The most current the EV on this EVSE said it takes, if it said."""
        needs = self._ev_needs.get((station_id, evse_id))
        return None if needs is None else needs.max_current_a

    async def prune_events(self, retention_days: float) -> int:
        """Delete station events received more than ``retention_days`` ago; returns how many."""
        return await self.store.prune_station_events(self.clock.now() - timedelta(days=retention_days))

    async def prune_forever(self, retention_days: float, interval_s: float = 3600.0) -> None:
        """Prune now and every ``interval_s``; a failing store is logged and retried, never fatal."""
        while True:
            try:
                pruned = await self.prune_events(retention_days)
                if pruned:
                    log.info("pruned %d station events older than %s days", pruned, retention_days)
            except Exception as exc:
                log.error("station event pruning failed; will retry: %s", exc)
            await asyncio.sleep(interval_s)
