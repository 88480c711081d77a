"""Prices sessions and keeps their charge detail records.

Readings of each transaction's energy register come from the core's ``RegisterFeed`` (``feed``,
attached to the charging service by the plugin): in arrival order, in batches, and always before
the service reads its own state, so no meter sample is turned into an event for pricing. They are
kept in memory for sessions running now (one per ``reading_interval_s``, plus the latest) and
written behind to the store. When a transaction ends, its CDR is made from its readings, the tariff
assigned to it (the version valid at its start) and its signed meter values. Making a CDR is
idempotent, and a reconciling pass makes the CDR of every ended transaction that has none (after
a crash, say), so no completed session goes unbilled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from csms.cluster.elected import Elected, always
from csms.core.events import TransactionEnded, TransactionStarted
from csms.core.model import Transaction
from csms.core.ports import Clock
from csms.core.registers import Reading, RegisterFeed
from csms.core.sites import Placement
from csms.core.station_events import SignedMeterValue
from csms.store.tariffs import SqlTariffs, TariffVersion
from csms.tariffs.assign import pick_tariff
from csms.tariffs.cdr import Cdr, build_cdr
from csms.tariffs.pricing import Cost, MeterReading, SessionUsage, price_session

log = structlog.get_logger("csms.tariffs")

TxKey = tuple[str, str]


class TransactionReader(Protocol):
    async def get_transaction(self, station_id: str, tx_id: str) -> Transaction | None: ...
    async def list_signed_meter_values(self, station_id: str, tx_id: str) -> list[SignedMeterValue]: ...


class PlacementReader(Protocol):
    async def placement(self, station_id: str) -> Placement: ...
    async def get_site(self, site_id: str) -> object: ...


@dataclass(slots=True)
class _Running:
    readings: list[MeterReading] = field(default_factory=list)
    latest: tuple[datetime, float] | None = None  # the newest reading (time, Wh), kept or not
    touched: float = 0.0  # monotonic time of the last reading


def _exact(wh: float) -> Decimal:
    """A register value to the mWh, without the float's noise (131.069 kWh is 131069 Wh, not
    131068.99999999999)."""
    d = Decimal(repr(wh)).quantize(Decimal("0.001"), ROUND_HALF_UP)
    return Decimal(int(d)) if d == d.to_integral_value() else d.normalize()


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


MAX_CDR_ATTEMPTS = 10  # then the reconciling pass takes the transaction over
STALE_RUNNING_S = 6 * 3600.0  # readings of a session silent this long stay in the store only
RECENTLY_BILLED = 10_000  # ended transactions whose late samples are ignored
RECONCILE_GRACE_S = 30.0  # beyond cdr_delay_s: the serving core's own CDR of a session just ended


class TariffService:
    def __init__(
        self,
        store: SqlTariffs,
        transactions: TransactionReader,
        sites: PlacementReader,
        clock: Clock,
        *,
        reading_interval_s: float = 60.0,
        tag_group_of: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self.store = store
        self.transactions = transactions
        self.sites = sites
        self.clock = clock
        self.reading_interval = timedelta(seconds=reading_interval_s)
        self.tag_group_of = tag_group_of
        self._running: dict[TxKey, _Running] = {}
        self._pending: list[tuple[str, str, MeterReading]] = []
        self._started: list[Transaction] = []  # whose tariff is still to be kept
        self._ended: dict[TxKey, tuple[float, int]] = {}  # ended: when seen (monotonic), attempts
        self._billed: OrderedDict[TxKey, None] = OrderedDict()  # CDR made: late samples are ignored
        self.cdr_delay_s = 3.0  # lets write-behind data of the session's last seconds (signed values) land
        self._ended_anywhere: dict[TxKey, float] = {}  # ended on any core node: when heard (monotonic)
        self.cdrs_made = 0
        self.feed = RegisterFeed(self.take)  # the registers of every transaction, from the core

    # --- readings (synchronous, from the core's feed) ------------------------------------------
    def take(self, readings: list[Reading]) -> None:
        """Register readings as the core saw them, oldest first."""
        now = time.monotonic()
        keep = self._keep
        for key, at, wh in readings:
            keep(key, at, wh, now)

    # --- events (synchronous, from the bus) --------------------------------------------------
    def on_event(self, event: object) -> None:
        if isinstance(event, TransactionStarted):
            tx = event.transaction
            self._started.append(tx)
            if tx.meter_start_wh is not None and tx.started_at is not None:
                self.feed.flush()  # readings the core queued before the start come first
                self._keep((tx.station_id, tx.tx_id), tx.started_at, tx.meter_start_wh, time.monotonic())
        elif isinstance(event, TransactionEnded):
            self._ended[(event.transaction.station_id, event.transaction.tx_id)] = (time.monotonic(), 0)

    def on_ended_anywhere(self, event: object) -> None:
        """Cluster-wide handler of ``TransactionEnded``: the core serving the station makes that
        CDR after ``cdr_delay_s``; the reconciling pass, maybe on another core, leaves it alone
        until ``RECONCILE_GRACE_S`` later."""
        if isinstance(event, TransactionEnded):
            self._ended_anywhere[(event.transaction.station_id, event.transaction.tx_id)] = time.monotonic()

    def _keep(self, key: TxKey, at: datetime, wh: float, now: float) -> None:
        """No Decimal unless the reading is kept (one per ``reading_interval_s``)."""
        if key in self._billed:
            return
        run = self._running.get(key)
        if run is None:
            run = self._running[key] = _Running()
        run.latest = (at, wh)
        run.touched = now
        if run.readings and at - run.readings[-1].at < self.reading_interval:
            return
        reading = MeterReading(at, _exact(wh))
        run.readings.append(reading)
        self._pending.append((*key, reading))

    # --- background work -----------------------------------------------------------------
    async def flush(self) -> None:
        """Write the readings kept since the last flush (put back when the store fails)."""
        self.feed.flush()
        batch, self._pending = self._pending, []
        try:
            await self.store.add_readings(batch)
        except Exception:
            self._pending[:0] = batch
            raise

    async def step(self) -> None:
        """Flush readings, keep the tariff of sessions that started, make the CDRs of those that
        ended meanwhile, and let go of the memory of sessions silent for hours."""
        await self.flush()
        started, self._started = self._started, []
        for i, tx in enumerate(started):
            try:
                await self._remember_tariff(tx)
            except Exception:
                self._started[:0] = started[i:]
                raise
        now = time.monotonic()
        for key, (seen, attempts) in sorted(self._ended.items()):
            if seen > now - self.cdr_delay_s:
                continue
            try:
                await self.make_cdr(*key)
            except Exception:
                log.exception("CDR not made yet; retried", charger_id=key[0], transaction_id=key[1])
                if attempts + 1 < MAX_CDR_ATTEMPTS:
                    self._ended[key] = (seen, attempts + 1)
                    continue
            self._ended.pop(key, None)
        for key in [k for k, run in self._running.items() if now - run.touched > STALE_RUNNING_S]:
            del self._running[key]
        if self._ended_anywhere:  # every node hears them; only the reconciling one needs them
            recent = now - self.cdr_delay_s - RECONCILE_GRACE_S
            self._ended_anywhere = {k: at for k, at in self._ended_anywhere.items() if at > recent}

    async def reconcile(self) -> int:
        """Make the CDR of every ended transaction that has none; returns how many were made. One
        that fails is logged and skipped: it never holds up the others."""
        made = 0
        recent = time.monotonic() - self.cdr_delay_s - RECONCILE_GRACE_S
        self._ended_anywhere = {k: at for k, at in self._ended_anywhere.items() if at > recent}
        for station_id, tx_id in await self.store.ended_without_cdr():
            if (station_id, tx_id) in self._ended or (station_id, tx_id) in self._ended_anywhere:
                continue  # ended moments ago (here or on another core): its own turn comes
            try:
                if await self.make_cdr(station_id, tx_id) is not None:
                    made += 1
            except Exception:
                log.exception(
                    "CDR not made; tried again next pass", charger_id=station_id, transaction_id=tx_id
                )
        if made:
            log.info("CDRs made for ended transactions that had none", count=made)
        return made

    async def run(
        self, *, flush_s: float = 1.0, reconcile_s: float = 60.0, elected: Elected = always
    ) -> None:
        """Keep readings every ``flush_s``; reconcile CDRs every ``reconcile_s`` while ``elected()``."""
        last_reconcile = -reconcile_s
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.step()
                if loop.time() - last_reconcile >= reconcile_s and elected():
                    await self.reconcile()
                    last_reconcile = loop.time()
            except Exception:
                log.exception("tariff service step failed; retried")
            await asyncio.sleep(flush_s)

    async def close(self) -> None:
        """Write what is kept; the CDRs still due are made by the next start's reconciling pass."""
        with contextlib.suppress(Exception):
            await self.flush()

    # --- pricing -------------------------------------------------------------------------
    async def _place(self, tx: Transaction) -> tuple[Placement, ZoneInfo]:
        placement = await self.sites.placement(tx.station_id)
        zone = ZoneInfo("UTC")
        if placement.site_id is not None:
            site = await self.sites.get_site(placement.site_id)
            zone = _zone(getattr(site, "time_zone", None))
        return placement, zone

    async def _assigned(
        self, tx: Transaction, placement: Placement, assignments: list[tuple[str, str, str]] | None = None
    ) -> str | None:
        if assignments is None:
            assignments = await self.store.assignments()
        tag_group = await self.tag_group_of(tx.id_tag) if self.tag_group_of and tx.id_tag else None
        return pick_tariff(
            assignments,
            station_id=tx.station_id,
            groups=placement.groups,
            site_id=placement.site_id,
            tag_group=tag_group,
        )

    async def _remember_tariff(self, tx: Transaction) -> None:
        """Keep the tariff (and version) in force as the session starts: later changes of
        assignments, placement or tariffs do not reprice it."""
        if tx.started_at is None:
            return
        assignments = await self.store.assignments()
        if not assignments:  # no tariff assigned anywhere: no placement or tag group to look up
            return
        placement, zone = await self._place(tx)
        tariff_id = await self._assigned(tx, placement, assignments)
        if tariff_id is None:
            return
        version = await self.store.tariff_at(tariff_id, tx.started_at) or await self.store.get_tariff(
            tariff_id
        )
        if version is not None and version.retired_at is None:
            await self.store.remember_tariff(
                tx.station_id, tx.tx_id, tariff_id, version.tariff.version, zone.key
            )

    async def tariff_for(
        self, tx: Transaction, *, current: bool = False
    ) -> tuple[TariffVersion | None, Placement, ZoneInfo]:
        """The tariff a session is priced with: the one kept when it started; else (it started while
        pricing was off, or moments ago) the one assigned now, in the version valid at its start.
        ``current``: the one assigned now, in its latest version (an explicit re-pricing)."""
        placement, zone = await self._place(tx)
        if not current:
            kept = await self.store.tariff_of(tx.station_id, tx.tx_id)
            if kept is not None:
                return await self.store.get_tariff(kept[0], kept[1]), placement, _zone(kept[2])
        tariff_id = await self._assigned(tx, placement)
        if tariff_id is None or tx.started_at is None:
            return None, placement, zone
        if current:
            return await self.store.get_tariff(tariff_id), placement, zone
        return await self.store.tariff_at(tariff_id, tx.started_at), placement, zone

    async def _readings(self, tx: Transaction) -> list[MeterReading]:
        key = (tx.station_id, tx.tx_id)
        stored = await self.store.readings(*key)
        self.feed.flush()  # up to the latest sample the core has seen
        run = self._running.get(key)
        by_time = {r.at: r for r in stored}
        if run is not None:
            by_time.update({r.at: r for r in run.readings})
            if run.latest is not None:
                by_time[run.latest[0]] = MeterReading(run.latest[0], _exact(run.latest[1]))
        readings = [by_time[k] for k in sorted(by_time)]
        if tx.started_at is not None and tx.meter_start_wh is not None:
            readings = [r for r in readings if r.at > tx.started_at]
            readings.insert(0, MeterReading(tx.started_at, _exact(tx.meter_start_wh)))
        if tx.stopped_at is not None and tx.meter_stop_wh is not None:
            readings = [r for r in readings if r.at < tx.stopped_at]
            readings.append(MeterReading(tx.stopped_at, _exact(tx.meter_stop_wh)))
        return readings

    async def quote(self, tx: Transaction, at: datetime | None = None) -> Cost | None:
        """The session's cost: final when it ended, else as if it stopped at ``at`` (default now);
        None without a tariff or when it cannot be priced."""
        version, _, zone = await self.tariff_for(tx)
        if version is None or tx.started_at is None:
            return None
        stop = tx.stopped_at or max(at or self.clock.now(), tx.started_at)
        usage = SessionUsage(tx.started_at, stop, tuple(await self._readings(tx)))
        try:
            return price_session(version.tariff, usage, zone)
        except (ValueError, ArithmeticError):
            return None

    async def make_cdr(self, station_id: str, tx_id: str, *, reprice: bool = False) -> Cdr | None:
        """The CDR of an ended transaction (made once; ``reprice`` prices it again with the tariff
        assigned now). Every ended transaction gets one: one that cannot be priced is kept with
        its flags and no price."""
        existing = await self.store.cdr_of(station_id, tx_id)
        if existing is not None and not reprice:
            return existing
        tx = await self.transactions.get_transaction(station_id, tx_id)
        if tx is None or tx.stopped_at is None:
            return None
        flags: list[str] = []
        if tx.started_at is None:  # a stop of a transaction the CSMS never saw start
            tx = replace(tx, started_at=tx.stopped_at)
            flags.append("unknown_start")
        assert tx.started_at is not None and tx.stopped_at is not None
        version, placement, zone = await self.tariff_for(tx, current=reprice)
        readings = await self._readings(tx)
        cost = None
        if version is None:
            flags.append("no_tariff")
        else:
            try:
                cost = price_session(
                    version.tariff, SessionUsage(tx.started_at, tx.stopped_at, tuple(readings)), zone
                )
            except (ValueError, ArithmeticError) as exc:  # stop before start, absurd registers
                flags.append("unpriceable")
                log.warning(
                    "session not priced", charger_id=station_id, transaction_id=tx_id, reason=str(exc)
                )
        energy = _exact(tx.energy_wh) if tx.energy_wh is not None and tx.energy_wh >= 0 else Decimal(0)
        signed = await self.transactions.list_signed_meter_values(station_id, tx_id)
        cdr = build_cdr(tx, cost, signed, site_id=placement.site_id, energy_wh=energy, extra_flags=flags)
        if existing is not None and existing.cdr_id is not None:
            await self.store.replace_cost(existing.cdr_id, cdr)
        elif await self.store.insert_cdr(cdr):
            self.cdrs_made += 1
        self._running.pop((station_id, tx_id), None)
        self._billed[(station_id, tx_id)] = None
        while len(self._billed) > RECENTLY_BILLED:
            self._billed.popitem(last=False)
        return await self.store.cdr_of(station_id, tx_id)
