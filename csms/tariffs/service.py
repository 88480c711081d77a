"""Prices sessions and keeps their charge detail records.

Readings of each transaction's energy register arrive as ``MeterSampled`` events: they are kept
in memory for sessions running now (one per ``reading_interval_s``, plus the latest) and written
behind to the store. When a transaction ends, its CDR is made from its readings, the tariff
assigned to it (the version valid at its start) and its signed meter values. Making a CDR is
idempotent, and a reconciling pass makes the CDR of every ended transaction that has none (after
a crash, say), so no completed session goes unbilled.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from csms.cluster.elected import Elected, always
from csms.core.events import MeterSampled, TransactionEnded, TransactionStarted
from csms.core.model import Transaction
from csms.core.ports import Clock
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
    latest: MeterReading | None = None


def _exact(wh: float) -> Decimal:
    """A register value as the station sent it (``10000``, not ``10000.0``)."""
    d = Decimal(str(wh))
    return Decimal(int(d)) if d == d.to_integral_value() else d


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


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
        self._ended: dict[TxKey, float] = {}  # ended transactions: when the end was seen (monotonic)
        self.cdr_delay_s = 3.0  # lets write-behind data of the session's last seconds (signed values) land
        self.cdrs_made = 0

    # --- events (synchronous, from the bus) --------------------------------------------------
    def on_event(self, event: object) -> None:
        if isinstance(event, MeterSampled):
            sample = event.sample
            energy = sample.energy_wh
            if sample.transaction_id is None or energy is None:
                return
            self._keep(
                (sample.station_id, sample.transaction_id), MeterReading(sample.ts, _exact(energy))
            )
        elif isinstance(event, TransactionStarted):
            tx = event.transaction
            if tx.meter_start_wh is not None and tx.started_at is not None:
                self._keep(
                    (tx.station_id, tx.tx_id), MeterReading(tx.started_at, _exact(tx.meter_start_wh))
                )
        elif isinstance(event, TransactionEnded):
            self._ended[(event.transaction.station_id, event.transaction.tx_id)] = time.monotonic()

    def _keep(self, key: TxKey, reading: MeterReading) -> None:
        run = self._running.setdefault(key, _Running())
        run.latest = reading
        if run.readings and reading.at - run.readings[-1].at < self.reading_interval:
            return
        run.readings.append(reading)
        self._pending.append((*key, reading))

    # --- background work -----------------------------------------------------------------
    async def flush(self) -> None:
        """Write the readings kept since the last flush (put back when the store fails)."""
        batch, self._pending = self._pending, []
        try:
            await self.store.add_readings(batch)
        except Exception:
            self._pending[:0] = batch
            raise

    async def step(self) -> None:
        """Flush readings, then make the CDRs of the transactions that ended meanwhile."""
        await self.flush()
        due = time.monotonic() - self.cdr_delay_s
        for key, seen in sorted(self._ended.items()):
            if seen > due:
                continue
            try:
                await self.make_cdr(*key)
            except Exception:
                log.exception("CDR not made yet; retried", charger_id=key[0], transaction_id=key[1])
                continue
            self._ended.pop(key, None)

    async def reconcile(self) -> int:
        """Make the CDR of every ended transaction that has none; returns how many were made."""
        made = 0
        for station_id, tx_id in await self.store.ended_without_cdr():
            if await self.make_cdr(station_id, tx_id) is not None:
                made += 1
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
    async def tariff_for(self, tx: Transaction) -> tuple[TariffVersion | None, Placement, ZoneInfo]:
        placement = await self.sites.placement(tx.station_id)
        zone = ZoneInfo("UTC")
        if placement.site_id is not None:
            site = await self.sites.get_site(placement.site_id)
            zone = _zone(getattr(site, "time_zone", None))
        tag_group = await self.tag_group_of(tx.id_tag) if self.tag_group_of and tx.id_tag else None
        tariff_id = pick_tariff(
            await self.store.assignments(),
            station_id=tx.station_id,
            groups=placement.groups,
            site_id=placement.site_id,
            tag_group=tag_group,
        )
        if tariff_id is None or tx.started_at is None:
            return None, placement, zone
        return await self.store.tariff_at(tariff_id, tx.started_at), placement, zone

    async def _readings(self, tx: Transaction) -> list[MeterReading]:
        key = (tx.station_id, tx.tx_id)
        stored = await self.store.readings(*key)
        run = self._running.get(key)
        by_time = {r.at: r for r in stored}
        if run is not None:
            by_time.update({r.at: r for r in run.readings})
            if run.latest is not None:
                by_time[run.latest.at] = run.latest
        readings = [by_time[k] for k in sorted(by_time)]
        if tx.started_at is not None and tx.meter_start_wh is not None:
            readings = [r for r in readings if r.at > tx.started_at]
            readings.insert(0, MeterReading(tx.started_at, _exact(tx.meter_start_wh)))
        if tx.stopped_at is not None and tx.meter_stop_wh is not None:
            readings = [r for r in readings if r.at < tx.stopped_at]
            readings.append(MeterReading(tx.stopped_at, _exact(tx.meter_stop_wh)))
        return readings

    async def quote(self, tx: Transaction, at: datetime | None = None) -> Cost | None:
        """The session's cost: final when it ended, else as if it stopped at ``at`` (default now)."""
        version, _, zone = await self.tariff_for(tx)
        if version is None or tx.started_at is None:
            return None
        stop = tx.stopped_at or max(at or self.clock.now(), tx.started_at)
        usage = SessionUsage(tx.started_at, stop, tuple(await self._readings(tx)))
        return price_session(version.tariff, usage, zone)

    async def make_cdr(self, station_id: str, tx_id: str, *, reprice: bool = False) -> Cdr | None:
        """The CDR of an ended transaction (made once; ``reprice`` replaces its cost)."""
        existing = await self.store.cdr_of(station_id, tx_id)
        if existing is not None and not reprice:
            return existing
        tx = await self.transactions.get_transaction(station_id, tx_id)
        if tx is None or tx.stopped_at is None or tx.started_at is None:
            return None
        version, placement, zone = await self.tariff_for(tx)
        readings = await self._readings(tx)
        cost = None
        flags: list[str] = []
        if version is None:
            flags.append("no_tariff")
        else:
            cost = price_session(
                version.tariff, SessionUsage(tx.started_at, tx.stopped_at, tuple(readings)), zone
            )
        energy = _exact(tx.energy_wh) if tx.energy_wh is not None else Decimal(0)
        signed = await self.transactions.list_signed_meter_values(station_id, tx_id)
        cdr = build_cdr(tx, cost, signed, site_id=placement.site_id, energy_wh=energy, extra_flags=flags)
        if existing is not None and existing.cdr_id is not None:
            await self.store.replace_cost(existing.cdr_id, cdr)
        elif await self.store.insert_cdr(cdr):
            self.cdrs_made += 1
        self._running.pop((station_id, tx_id), None)
        return await self.store.cdr_of(station_id, tx_id)
