"""Transactions: 1.6 starts and stops, 2.0.1 TransactionEvents, and reading them back.

The rules are ``csms.core.transactions``'; this module reads the current state, calls them and
persists what they decided, every write committed before the caller is answered.

The hot writes bypass SQLAlchemy's per-statement work: 2.0.1 ``Updated`` events of a
transaction held in memory and 1.6 starts/stops go through group commits
(``csms.store.group_commit``: concurrent callers share one transaction, each answered after
that commit), running fixed SQL in one call to the database (``csms.store.direct``).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from csms.core.model import Transaction
from csms.core.ports import EventResult, StopResult, TimeRange, TransactionEventRecord, TxKey, TxOrder
from csms.core.transactions import (
    Applied,
    TransactionState,
    apply_event,
    extends,
    orphan_stop,
    start_key,
    stop,
)
from csms.errors import StoreUnavailable
from csms.store import schema as t
from csms.store.direct import Conflict, DirectSql, Work
from csms.store.engine import Database, now
from csms.store.group_commit import GroupCommit
from ocppj.versions import OcppVersion

_TX_CACHE_MAX = 200_000
# 2.0.1 group commit: a small batch waits up to this long for more events (measured at 25 % load:
# ~12 % less CPU per call, p50 +1 ms; see csms.store.group_commit).
_LINGER_S = 0.002

# Fixed SQL for DirectSql (``?`` placeholders). An ``Updated`` event (the only kind on the
# group-commit path) changes no other column (``csms.core.transactions.extends``).
_FAST = ("last_seq_no", "meter_last_wh", "meter_start_wh", "flags", "id_tag", "evse_id", "connector_id")
_SQL_EVENT = (
    "INSERT INTO transaction_events (station_id, tx_id, seq_no, event_type, trigger_reason, ts, offline,"
    " received_at, meter_wh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_FAST_UPDATE = "UPDATE transactions SET " + ", ".join(f"{c} = ?" for c in _FAST) + " WHERE pk = ?"
_TX_COLS = ("pk", "station_id", "tx_id", "protocol", "evse_id", "connector_id", "id_tag", "started_at",
            "stopped_at", "meter_start_wh", "meter_stop_wh", "meter_last_wh", "stop_reason", "last_seq_no",
            "flags")
_SQL_TX_BY_KEY = f"SELECT {', '.join(_TX_COLS)} FROM transactions WHERE start_key = ?"
_SQL_TX_BY_ID = f"SELECT {', '.join(_TX_COLS)} FROM transactions WHERE station_id = ? AND tx_id = ?"
_SQL_INSERT_TX = (
    "INSERT INTO transactions (station_id, tx_id, protocol, evse_id, connector_id, id_tag, started_at,"
    " stopped_at, meter_start_wh, meter_stop_wh, meter_last_wh, stop_reason, last_seq_no, flags, start_key,"
    " received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_SET_TX_ID = "UPDATE transactions SET tx_id = ? WHERE pk = ?"
_SQL_STOP = (
    "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, stop_reason = ?, flags = ? WHERE pk = ?"
)
# the columns an event may change, in the order of ``_changeable``
_CHANGEABLE = ("evse_id", "connector_id", "id_tag", "started_at", "stopped_at", "meter_start_wh",
               "meter_stop_wh", "meter_last_wh", "stop_reason", "last_seq_no", "flags")
_TIMESTAMPS = frozenset({"started_at", "stopped_at"})

_PROTOCOLS = {v.value: v for v in OcppVersion}
_ts_in = DirectSql.ts_in


@functools.lru_cache(maxsize=1024)
def _flags(raw: str | None) -> tuple[str, ...]:
    """The flags of a ``flags`` column (memoised: a few combinations recur on every event)."""
    return tuple(f for f in (raw or "").split(",") if f)


def _keyset(q: sa.Select[Any], order: TxOrder, after: TxKey | None) -> sa.Select[Any]:
    """``q`` ordered by start time then (station, id), sessions without a start last, after ``after``."""
    c = t.transactions.c
    desc = order is TxOrder.STARTED_DESC
    ident = sa.tuple_(c.station_id, c.tx_id)
    if after is not None:
        key = sa.tuple_(sa.literal(after.station_id), sa.literal(after.tx_id))
        beyond = ident < key if desc else ident > key
        if after.started_at is None:
            q = q.where(c.started_at.is_(None), beyond)
        else:
            later = c.started_at < after.started_at if desc else c.started_at > after.started_at
            tie = sa.and_(c.started_at == after.started_at, beyond)
            q = q.where(sa.or_(later, tie, c.started_at.is_(None)))
    if desc:
        return q.order_by(c.started_at.desc().nulls_last(), c.station_id.desc(), c.tx_id.desc())
    return q.order_by(c.started_at.asc().nulls_last(), c.station_id.asc(), c.tx_id.asc())


def _tx_map(m: Mapping[Any, Any]) -> Transaction:
    """A ``transactions`` row (by column name) as a domain record."""
    # positional, in field order: a third cheaper than keywords
    return Transaction(
        m["station_id"], m["tx_id"], m["evse_id"], m["connector_id"], m["id_tag"], m["started_at"],
        m["stopped_at"], m["meter_start_wh"], m["meter_stop_wh"], m["stop_reason"],
        _PROTOCOLS[m["protocol"]], m["last_seq_no"], _flags(m["flags"]), m.get("reservation_id"),
    )


def _state(row: Sequence[Any]) -> TransactionState:
    """A row of ``_TX_COLS`` as read by the driver."""
    (pk, station_id, tx_id, protocol, evse_id, connector_id, id_tag, started_at, stopped_at, meter_start,
     meter_stop, meter_last, stop_reason, last_seq_no, flags) = row
    tx = Transaction(
        station_id, tx_id, evse_id, connector_id, id_tag, _ts_in(started_at), _ts_in(stopped_at),
        meter_start, meter_stop, stop_reason, _PROTOCOLS[protocol], last_seq_no, _flags(flags),
    )
    return TransactionState(tx, meter_last, pk)


def _changeable(s: TransactionState) -> tuple[Any, ...]:
    tx = s.transaction
    return (tx.evse_id, tx.connector_id, tx.id_tag, tx.started_at, tx.stopped_at, tx.meter_start_wh,
            tx.meter_stop_wh, s.meter_last_wh, tx.stop_reason, tx.last_seq_no, tx.flags)


def _fast_update_params(s: TransactionState) -> tuple[Any, ...]:
    """``_SQL_FAST_UPDATE``'s parameters for a state."""
    tx = s.transaction
    return (tx.last_seq_no, s.meter_last_wh, tx.meter_start_wh, ",".join(tx.flags), tx.id_tag, tx.evse_id,
            tx.connector_id, s.ref)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class _Start:
    """A 1.6 StartTransaction waiting for its group commit (``ts`` in UTC)."""

    station_id: str
    evse_id: int
    connector_id: int
    id_tag: str | None
    meter_start_wh: float | None
    ts: datetime
    flags: tuple[str, ...]
    key: str


@dataclass(frozen=True, slots=True)
class _Stop:
    """A 1.6 StopTransaction waiting for its group commit (``ts`` in UTC)."""

    station_id: str
    tx_id: str
    meter_stop_wh: float | None
    ts: datetime
    reason: str | None
    id_tag: str | None


_V16Item = _Start | _Stop
_V16Result = tuple[Transaction, bool] | StopResult


class SqlTransactions:
    """The transaction part of ``csms.core.ports.Store``.

    Open 2.0.1 transactions are kept in memory (``_cache``, bounded) so an ``Updated`` event
    needs no read: it joins a group commit of two ``executemany`` statements.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self._direct = db.direct_sql
        self._cache: dict[tuple[str, str], TransactionState] = {}
        self._batcher = GroupCommit(self._apply_batch, linger_s=_LINGER_S)
        self._v16 = GroupCommit(self._apply_v16_batch)
        self._update_sql: dict[tuple[str, ...], str] = {}
        sql, returning = self._direct.sql, self._direct.returning_pk()
        self._q_event, self._q_fast_update = sql(_SQL_EVENT), sql(_SQL_FAST_UPDATE)
        self._q_tx_by_key, self._q_tx_by_id = sql(_SQL_TX_BY_KEY), sql(_SQL_TX_BY_ID)
        self._q_insert_tx, self._q_set_tx_id = sql(_SQL_INSERT_TX) + returning, sql(_SQL_SET_TX_ID)
        self._q_stop = sql(_SQL_STOP)

    async def close(self) -> None:
        """Stop the group commits; whoever still waits gets ``StoreUnavailable``."""
        await self._batcher.close()
        await self._v16.close()

    def _insert_in(
        self, cur: Any, tx: Transaction, meter_last_wh: float | None, key: str | None, received: Any
    ) -> int:
        """Insert a transaction row; returns its ``pk``."""
        ts = self._direct.ts
        cur.execute(self._q_insert_tx, (
            tx.station_id, tx.tx_id, tx.protocol.value, tx.evse_id, tx.connector_id, tx.id_tag,
            ts(tx.started_at), ts(tx.stopped_at), tx.meter_start_wh, tx.meter_stop_wh, meter_last_wh,
            tx.stop_reason, tx.last_seq_no, ",".join(tx.flags), key, received,
        ))
        return self._direct.inserted_pk(cur)

    # --- 1.6 ----------------------------------------------------------------------------
    async def start_transaction(
        self, station_id: str, *, evse_id: int, connector_id: int, id_tag: str | None,
        meter_start_wh: float | None, ts: datetime, flags: tuple[str, ...] = (),
    ) -> tuple[Transaction, bool]:
        """1.6 start: the id is the row's integer key; a replay returns the first record."""
        key = start_key(station_id, connector_id, id_tag, ts, meter_start_wh)
        item = _Start(station_id, evse_id, connector_id, id_tag, meter_start_wh, _utc(ts), flags, key)
        result = await self._v16.submit(item)
        assert isinstance(result, tuple)
        return result

    async def stop_transaction(
        self, station_id: str, tx_id: str, *, meter_stop_wh: float | None, ts: datetime,
        reason: str | None, id_tag: str | None,
    ) -> StopResult:
        """1.6 stop: replays return the stored record; unknown ids are kept as orphans."""
        result = await self._v16.submit(_Stop(station_id, tx_id, meter_stop_wh, _utc(ts), reason, id_tag))
        assert isinstance(result, StopResult)
        return result

    async def _apply_v16_batch(self, batch: list[_V16Item]) -> list[_V16Result]:
        """Group commit of 1.6 starts and stops, applied in arrival order in one transaction.

        Each item reads what the ones before it wrote, so a replay inside a batch is answered
        like one across batches. On a unique-key conflict (a concurrent writer on PostgreSQL)
        every item is retried alone.
        """
        try:
            return await self._db.direct(self._v16_work(batch))
        except Conflict:
            return [await self._v16_alone(item) for item in batch]

    async def _v16_alone(self, item: _V16Item) -> _V16Result:
        for _attempt in range(2):
            try:
                return (await self._db.direct(self._v16_work([item])))[0]
            except Conflict:
                continue  # a concurrent replay committed first: read it back
        raise StoreUnavailable("could not record a 1.6 transaction message")

    def _v16_work(self, batch: list[_V16Item]) -> Work[list[_V16Result]]:
        received = self._direct.ts(now())

        def work(cur: Any) -> list[_V16Result]:
            return [
                self._start_in(cur, item, received) if isinstance(item, _Start)
                else self._stop_in(cur, item, received)
                for item in batch
            ]
        return work

    def _start_in(self, cur: Any, s: _Start, received: Any) -> tuple[Transaction, bool]:
        cur.execute(self._q_tx_by_key, (s.key,))
        row = cur.fetchone()
        if row is not None:
            return _state(row).transaction, False
        tx = Transaction(
            s.station_id, "~" + uuid.uuid4().hex, s.evse_id, s.connector_id, s.id_tag, s.ts, None,
            s.meter_start_wh, None, None, OcppVersion.V16, None, s.flags,
        )
        pk = self._insert_in(cur, tx, None, s.key, received)
        tx_id = str(pk)
        cur.execute(self._q_set_tx_id, (tx_id, pk))
        return Transaction(
            s.station_id, tx_id, s.evse_id, s.connector_id, s.id_tag, s.ts, None, s.meter_start_wh, None,
            None, OcppVersion.V16, None, s.flags,
        ), True

    def _stop_in(self, cur: Any, s: _Stop, received: Any) -> StopResult:
        cur.execute(self._q_tx_by_id, (s.station_id, s.tx_id))
        row = cur.fetchone()
        if row is None:
            return self._orphan_stop_in(cur, s, received)
        current = _state(row)
        result = stop(current.transaction, ts=s.ts, meter_stop_wh=s.meter_stop_wh, reason=s.reason)
        if not result.replay:
            tx = result.transaction
            cur.execute(self._q_stop, (
                self._direct.ts(tx.stopped_at), tx.meter_stop_wh, tx.stop_reason, ",".join(tx.flags),
                current.ref,
            ))
        return result

    def _orphan_stop_in(self, cur: Any, s: _Stop, received: Any) -> StopResult:
        orphan = orphan_stop(
            s.station_id, s.tx_id, ts=s.ts, meter_stop_wh=s.meter_stop_wh, reason=s.reason, id_tag=s.id_tag
        )
        cur.execute(self._q_tx_by_id, (s.station_id, orphan.tx_id))
        row = cur.fetchone()
        if row is not None:
            return StopResult(_state(row).transaction, replay=True, orphan=True)
        self._insert_in(cur, orphan, None, None, received)
        return StopResult(orphan, replay=False, orphan=True)

    # --- 2.0.1 --------------------------------------------------------------------------
    async def apply_transaction_event(self, r: TransactionEventRecord) -> EventResult:
        """2.0.1 event: one row per (station, transaction, seqNo); the transaction row is upserted.

        ``Updated`` events of a transaction already in memory take the group-commit path:
        concurrent ones from many stations share one commit (two executemany statements);
        everything else (Started, Ended, out-of-order, unknown transactions) commits alone.
        """
        cached = self._cache.get((r.station_id, r.tx_id))
        if cached is not None and extends(cached, r):
            return await self._batcher.submit(r)
        return await self._apply_alone(r)

    async def _apply_alone(self, r: TransactionEventRecord) -> EventResult:
        """One event in its own commit (Started, Ended, out of order, or not cached)."""
        try:
            async with self._db.serialised():
                applied = await self._direct.run(self._alone_work(r))
        except Conflict:
            # the (station, transaction, seqNo) row exists: a retry; return what is stored
            tx = await self.get_transaction(r.station_id, r.tx_id)
            if tx is None:
                raise StoreUnavailable("transaction event replay without transaction") from None
            return EventResult(tx, replay=True, created=False, ended_now=False)
        state = applied.state
        if not applied.replay:
            self._remember(state)
        return EventResult(state.transaction, applied.replay, applied.created, applied.ended_now)

    def _alone_work(self, r: TransactionEventRecord) -> Work[Applied]:
        event = self._event_params(r, self._direct.ts(now()))

        def work(cur: Any) -> Applied:
            cur.execute(self._q_tx_by_id, (r.station_id, r.tx_id))
            row = cur.fetchone()
            current = None if row is None else _state(row)
            applied = apply_event(current, r)
            if applied.replay:
                return applied
            cur.execute(self._q_event, event)
            new = applied.state
            if current is None:
                pk = self._insert_in(cur, new.transaction, new.meter_last_wh, None, event[7])
                return applied._replace(state=TransactionState(new.transaction, new.meter_last_wh, pk))
            self._update_in(cur, current, new)
            return applied
        return work

    def _event_params(self, r: TransactionEventRecord, received: Any) -> tuple[Any, ...]:
        return (r.station_id, r.tx_id, r.seq_no, r.event_type, r.trigger_reason, self._direct.ts(r.ts),
                r.offline, received, r.meter_wh)

    def _update_in(self, cur: Any, current: TransactionState, new: TransactionState) -> None:
        """Write the columns of the transaction row that ``new`` changed."""
        changed = [
            (name, value)
            for name, old, value in zip(_CHANGEABLE, _changeable(current), _changeable(new), strict=True)
            if old != value
        ]
        if not changed:
            return
        columns = tuple(name for name, _ in changed)
        sql = self._update_sql.get(columns)
        if sql is None:  # names from _CHANGEABLE: never from outside
            sql = self._update_sql[columns] = self._direct.sql(
                f"UPDATE transactions SET {', '.join(f'{c} = ?' for c in columns)} WHERE pk = ?"
            )
        ts = self._direct.ts
        params = [
            ts(value) if name in _TIMESTAMPS else ",".join(value) if name == "flags" else value
            for name, value in changed
        ]
        cur.execute(sql, (*params, current.ref))

    def _remember(self, state: TransactionState) -> None:
        tx = state.transaction
        key = (tx.station_id, tx.tx_id)
        if tx.stopped_at is not None:
            self._cache.pop(key, None)
        elif key in self._cache or len(self._cache) < _TX_CACHE_MAX:
            self._cache[key] = state

    async def _apply_batch(self, batch: list[TransactionEventRecord]) -> list[EventResult]:
        """Group commit of fast-path events: two executemany statements and one commit.

        Events of one transaction in the same batch advance one after the other. On a conflict
        (a replayed seqNo) every event is retried alone, as is an event that repeats one before
        it in the batch, or whose transaction left the cache (ended) while it waited.
        """
        try:
            async with self._db.serialised():
                states, latest = self._advance_batch(batch)
                if latest:
                    await self._direct.run(self._fast_work(batch, states, latest))
        except Conflict:
            return [await self._apply_alone(r) for r in batch]
        for st in latest.values():
            self._remember(st)
        results: list[EventResult] = []
        for r, state in zip(batch, states, strict=True):
            if state is None:
                results.append(await self._apply_alone(r))
            else:  # positional: EventResult(transaction, replay, created, ended_now)
                results.append(EventResult(state.transaction, False, False, False))
        return results

    def _advance_batch(
        self, batch: list[TransactionEventRecord]
    ) -> tuple[list[TransactionState | None], dict[tuple[str, str], TransactionState]]:
        """Each event's new state (None: to apply alone), and the last state per transaction."""
        latest: dict[tuple[str, str], TransactionState] = {}
        states: list[TransactionState | None] = []
        cache = self._cache
        for r in batch:
            key = (r.station_id, r.tx_id)
            prev = latest.get(key) or cache.get(key)
            if prev is None:
                states.append(None)
                continue
            applied = apply_event(prev, r)
            if applied.replay:
                states.append(None)
                continue
            latest[key] = state = applied.state
            states.append(state)
        return states, latest

    def _fast_work(
        self, batch: list[TransactionEventRecord], states: list[TransactionState | None],
        latest: dict[tuple[str, str], TransactionState],
    ) -> Work[None]:
        received = self._direct.ts(now())
        events = [
            self._event_params(r, received) for r, st in zip(batch, states, strict=True) if st is not None
        ]
        updates = [_fast_update_params(st) for st in latest.values()]
        q_event, q_update = self._q_event, self._q_fast_update

        def work(cur: Any) -> None:
            cur.executemany(q_event, events)
            cur.executemany(q_update, updates)
        return work

    # --- reading ------------------------------------------------------------------------
    async def get_transaction(self, station_id: str, tx_id: str) -> Transaction | None:
        c = t.transactions.c
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(t.transactions).where((c.station_id == station_id) & (c.tx_id == tx_id))
            )).first()
        return _tx_map(row._mapping) if row else None

    async def list_transactions(
        self, *, station_id: str | None = None, active: bool | None = None, limit: int = 500,
        started: TimeRange | None = None, order: TxOrder | None = None, after: TxKey | None = None,
    ) -> list[Transaction]:
        """Transactions matching the filters, at most ``limit``; newest received first without an
        ``order``, else by start time after the key ``after`` (keyset paging)."""
        c = t.transactions.c
        q = sa.select(t.transactions)
        if station_id is not None:
            q = q.where(c.station_id == station_id)
        if active is True:
            q = q.where(c.stopped_at.is_(None))
        elif active is False:
            q = q.where(c.stopped_at.is_not(None))
        if started is not None and started.since is not None:
            q = q.where(c.started_at >= started.since)
        if started is not None and started.until is not None:
            q = q.where(c.started_at < started.until)
        q = q.order_by(c.pk.desc()) if order is None else _keyset(q, order, after)
        async with self._db.read() as conn:
            rows = (await conn.execute(q.limit(limit))).all()
        return [_tx_map(r._mapping) for r in rows]
