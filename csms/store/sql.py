"""The ``Store`` on SQLAlchemy Core: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when scaled out.

Every write is committed before the method returns (the data-integrity contract: no
CallResult before a durable commit). SQLite writes are serialised through one lock;
PostgreSQL relies on unique constraints.

The hot writes bypass SQLAlchemy's per-statement work: 2.0.1 ``Updated`` events and 1.6
starts/stops go through group commits (``csms.store.group_commit``: concurrent callers share
one transaction, each answered after that commit), and they and ``save_connectors`` run
fixed SQL in one call to the database (``csms.store.direct``). Station credentials are served
from memory (``csms.store.credentials``).
"""

from __future__ import annotations

import asyncio
import functools
import operator
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from csms.core.model import (
    AuthStatus,
    ConnectorState,
    IdTag,
    Station,
    StationInfo,
    Transaction,
)
from csms.core.ports import EventResult, StopResult, TransactionEventRecord
from csms.errors import StoreUnavailable
from csms.security.records import IssuedCertificate, StationCredentials
from csms.store import schema as t
from csms.store.credentials import CredentialsCache
from csms.store.direct import Conflict, DirectSql, Work, sqlite_pragmas
from csms.store.group_commit import GroupCommit
from ocppj.versions import OcppVersion

R = TypeVar("R")


def database_url(db: str) -> str:
    """Turn a ``--db`` value (a path, ``sqlite:///…`` or ``postgresql://…``) into an async URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + db.split("://", 1)[1]
    if db.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return db
    if db.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + db[len("sqlite:///"):]
    if db == ":memory:":
        return "sqlite+aiosqlite:///:memory:"
    return "sqlite+aiosqlite:///" + str(Path(db).expanduser())


def _now() -> datetime:
    return datetime.now(UTC)


@functools.lru_cache(maxsize=1024)
def _flags(raw: str | None) -> tuple[str, ...]:
    """The flags of a ``flags`` column (memoised: a few combinations recur on every event)."""
    return tuple(f for f in (raw or "").split(",") if f)


def _add_flags(raw: str | None, *new: str) -> str:
    flags = list(_flags(raw))
    for f in new:
        if f not in flags:
            flags.append(f)
    return ",".join(flags)


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


_TX_CACHE_MAX = 200_000
# 2.0.1 group commit: a small batch waits up to this long for more events (measured at 25 % load:
# ~12 % less CPU per call, p50 +1 ms; see csms.store.group_commit).
_LINGER_S = 0.002

# Fixed SQL for DirectSql (``?`` placeholders). An ``Updated`` event (the only kind on the
# group-commit path) changes no other column in advance(): started_at and the stop columns
# change only with Started and Ended events.
_FAST = ("last_seq_no", "meter_last_wh", "meter_start_wh", "flags", "id_tag", "evse_id", "connector_id")
_SQL_EVENT = (
    "INSERT INTO transaction_events (station_id, tx_id, seq_no, event_type, trigger_reason, ts, offline,"
    " received_at, meter_wh) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_FAST_UPDATE = "UPDATE transactions SET " + ", ".join(f"{c} = ?" for c in _FAST) + " WHERE pk = ?"
_fast_update_params = operator.itemgetter(*_FAST, "pk")  # a transaction row's parameters for it
_TX_COLS = ("pk", "station_id", "tx_id", "protocol", "evse_id", "connector_id", "id_tag", "started_at",
            "stopped_at", "meter_start_wh", "meter_stop_wh", "meter_last_wh", "stop_reason", "last_seq_no",
            "flags")
_TIMESTAMPS = frozenset({"started_at", "stopped_at"})
_SQL_TX_BY_KEY = f"SELECT {', '.join(_TX_COLS)} FROM transactions WHERE start_key = ?"
_SQL_TX_BY_ID = f"SELECT {', '.join(_TX_COLS)} FROM transactions WHERE station_id = ? AND tx_id = ?"
_SQL_INSERT_TX = (
    "INSERT INTO transactions (station_id, tx_id, protocol, evse_id, connector_id, id_tag, started_at,"
    " stopped_at, meter_start_wh, meter_stop_wh, stop_reason, flags, start_key, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_INSERT_V201 = (
    "INSERT INTO transactions (station_id, tx_id, protocol, evse_id, connector_id, id_tag, started_at,"
    " meter_start_wh, meter_last_wh, last_seq_no, flags, received_at)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SQL_SET_TX_ID = "UPDATE transactions SET tx_id = ? WHERE pk = ?"
_SQL_STOP = (
    "UPDATE transactions SET stopped_at = ?, meter_stop_wh = ?, stop_reason = ?, flags = ? WHERE pk = ?"
)
_SQL_ALL_CREDENTIALS = (
    "SELECT s.station_id, s.security_profile, s.password_hash, s.serial_number, r.pending_hash, r.base_hash"
    " FROM stations s LEFT OUTER JOIN password_rotations r ON r.station_id = s.station_id"
)
_SQL_CONNECTOR = (  # only for a registered station (see _SQL_VARIABLE)
    "INSERT INTO connectors (station_id, evse_id, connector_id, status, error_code, updated_at)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM stations WHERE station_id = ?)"
    " ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET"
    " status = excluded.status, error_code = excluded.error_code, updated_at = excluded.updated_at"
)

_SQL_VARIABLE = (  # only for a registered station: a write racing its deletion adds nothing
    "INSERT INTO device_variables (station_id, name, value, updated_at)"
    " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM stations WHERE station_id = ?)"
    " ON CONFLICT (station_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
)


@dataclass(frozen=True, slots=True)
class _Start:
    """A 1.6 StartTransaction waiting for its group commit (``ts`` in UTC)."""

    station_id: str
    evse_id: int
    connector_id: int
    id_tag: str | None
    meter_start_wh: float | None
    ts: datetime
    flags: str
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


def advance(row: Mapping[str, Any], r: TransactionEventRecord, *, first: bool) -> tuple[dict[str, Any], bool]:
    """Pure: the transaction row after event ``r`` (``first``: the row was just created from it).

    Returns the new row and whether this event ended the transaction.
    """
    new = dict(row)
    flags = new["flags"]
    if not first:
        last = new["last_seq_no"]
        if last is not None and r.seq_no != last + 1:
            flags = _add_flags(flags, "seq_gap" if r.seq_no > last + 1 else "seq_out_of_order")
        if last is None or r.seq_no > last:
            new["last_seq_no"] = r.seq_no
        if r.event_type == "Started":
            new["started_at"] = r.ts
            flags = ",".join(f for f in _flags(flags) if f != "start_missing")
            if r.meter_wh is not None:
                new["meter_start_wh"] = r.meter_wh
        if new["id_tag"] is None and r.id_tag is not None:
            new["id_tag"] = r.id_tag
        if r.meter_wh is not None:
            new["meter_last_wh"] = r.meter_wh
            if row["meter_start_wh"] is None and r.event_type != "Started":
                new["meter_start_wh"] = r.meter_wh
                flags = _add_flags(flags, "meter_start_estimated")
    if r.evse_id and not new["evse_id"]:
        new["evse_id"], new["connector_id"] = r.evse_id, r.connector_id
    if r.offline:
        flags = _add_flags(flags, "offline")
    ended_now = False
    if r.event_type == "Ended" and new["stopped_at"] is None:
        ended_now = True
        stop = r.meter_wh if r.meter_wh is not None else new["meter_last_wh"]
        new.update(stopped_at=r.ts, stop_reason=r.stopped_reason, meter_stop_wh=stop)
        start = new["meter_start_wh"]
        if stop is None:
            flags = _add_flags(flags, "meter_stop_missing")
        elif start is not None and stop < start:
            flags = _add_flags(flags, "meter_backwards")
    new["flags"] = flags
    return new, ended_now


def _tx(row: sa.Row[Any]) -> Transaction:
    return _tx_map(dict(row._mapping))


_PROTOCOLS = {v.value: v for v in OcppVersion}


def _tx_map(m: Mapping[str, Any]) -> Transaction:
    # positional, in field order: a third cheaper than keywords (one per answered event)
    return Transaction(
        m["station_id"], m["tx_id"], m["evse_id"], m["connector_id"], m["id_tag"], m["started_at"],
        m["stopped_at"], m["meter_start_wh"], m["meter_stop_wh"], m["stop_reason"],
        _PROTOCOLS[m["protocol"]], m["last_seq_no"], _flags(m["flags"]),
    )


def _credentials_row(row: Sequence[Any], known: StationCredentials | None) -> StationCredentials:
    """A row of ``_SQL_ALL_CREDENTIALS``; ``known`` itself when nothing changed.

    A pending rotation is stale once the password it was to replace changed.
    """
    station_id, profile, password, serial, pending, base = row
    pending = pending if base == password else None
    if (
        known is not None and known.security_profile == profile and known.password_hash == password
        and known.pending_password_hash == pending and known.serial_number == serial
    ):
        return known
    return StationCredentials(station_id, profile, password, pending, serial)


def _station(row: sa.Row[Any]) -> Station:
    m = row._mapping
    info = (
        StationInfo(m["vendor"], m["model"], m["serial_number"], m["firmware_version"])
        if m["vendor"] is not None
        else None
    )
    return Station(
        station_id=m["station_id"], protocol=OcppVersion(m["protocol"]) if m["protocol"] else None,
        info=info, security_profile=m["security_profile"], registered_at=m["registered_at"],
        last_boot_at=m["last_boot_at"], last_seen_at=m["last_seen_at"],
    )


class SqlStore:
    """SQL implementation of ``csms.core.ports.Store``."""

    def __init__(
        self, engine: AsyncEngine, *, sqlite_file: str | None = None, synchronous: str = "FULL"
    ) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self._tx_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._db = DirectSql(engine, sqlite_file=sqlite_file, synchronous=synchronous)
        self._batcher = GroupCommit(self._apply_batch, linger_s=_LINGER_S)
        self._v16 = GroupCommit(self._apply_v16_batch)
        self._creds = CredentialsCache(self._load_all_credentials, self._load_credentials)
        sql, returning = self._db.sql, self._db.returning_pk()
        self._q_event, self._q_fast_update = sql(_SQL_EVENT), sql(_SQL_FAST_UPDATE)
        self._q_tx_by_key, self._q_tx_by_id = sql(_SQL_TX_BY_KEY), sql(_SQL_TX_BY_ID)
        self._q_insert_tx, self._q_set_tx_id = sql(_SQL_INSERT_TX) + returning, sql(_SQL_SET_TX_ID)
        self._q_stop, self._q_connector = sql(_SQL_STOP), sql(_SQL_CONNECTOR)
        self._q_variable = sql(_SQL_VARIABLE)
        self._q_all_credentials = sql(_SQL_ALL_CREDENTIALS)
        self._q_insert_v201 = sql(_SQL_INSERT_V201) + returning

    @classmethod
    async def open(cls, db: str, *, synchronous: str = "FULL") -> SqlStore:
        """Connect, apply migrations, and return a ready store."""
        url = database_url(db)
        sqlite_file: str | None = None
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            sqlite_file = path if path != ":memory:" else None
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            sync_mode = synchronous.upper()

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                sqlite_pragmas(dbapi_conn.cursor(), synchronous=sync_mode, wal=path != ":memory:")
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        store = cls(engine, sqlite_file=sqlite_file, synchronous=synchronous)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(t.migrate)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"cannot open database {db!r}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self._batcher.close()
        await self._v16.close()
        await self._db.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def _serialised(self) -> AsyncIterator[None]:
        """SQLite has one writer: its writes take turns (PostgreSQL relies on unique constraints)."""
        if self._sqlite:
            async with self._write_lock:
                yield
        else:
            yield

    async def _direct(self, work: Work[R]) -> R:
        """Run fixed-SQL ``work`` in its own committed transaction (see ``csms.store.direct``)."""
        async with self._serialised():
            return await self._db.run(work)

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        try:
            if self._sqlite:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn
        except IntegrityError:
            raise
        except (DBAPIError, OSError, ConnectionError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError, ConnectionError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    # --- stations -----------------------------------------------------------------------
    async def get_station(self, station_id: str) -> Station | None:
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(t.stations).where(t.stations.c.station_id == station_id)
            )).first()
        return _station(row) if row else None

    async def list_stations(self) -> list[Station]:
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(t.stations).order_by(t.stations.c.station_id))).all()
        return [_station(r) for r in rows]

    async def upsert_station(
        self, station_id: str, *, security_profile: int | None = None,
        password_hash: str | None = None,
    ) -> Station:
        values: dict[str, Any] = {}
        if security_profile is not None:
            values["security_profile"] = security_profile
        if password_hash is not None:
            values["password_hash"] = password_hash
        try:
            async with self._write() as conn:
                exists = (await conn.execute(
                    sa.select(t.stations.c.station_id).where(t.stations.c.station_id == station_id)
                )).first()
                if exists:
                    if values:
                        await conn.execute(
                            t.stations.update().where(t.stations.c.station_id == station_id).values(**values)
                        )
                else:
                    await conn.execute(
                        t.stations.insert().values(station_id=station_id, registered_at=_now(), **values)
                    )
                row = (await conn.execute(
                    sa.select(t.stations).where(t.stations.c.station_id == station_id)
                )).one()
        finally:
            self._creds.forget(station_id)
        return _station(row)

    async def delete_station(self, station_id: str) -> bool:
        try:
            async with self._write() as conn:
                res = await conn.execute(t.stations.delete().where(t.stations.c.station_id == station_id))
                await conn.execute(t.connectors.delete().where(t.connectors.c.station_id == station_id))
                await conn.execute(
                    t.device_variables.delete().where(t.device_variables.c.station_id == station_id)
                )
        finally:
            self._creds.forget(station_id)
        return bool(res.rowcount)

    async def get_password_hash(self, station_id: str) -> str | None:
        async with self._read() as conn:
            value = (await conn.execute(
                sa.select(t.stations.c.password_hash).where(t.stations.c.station_id == station_id)
            )).scalar()
        return value if isinstance(value, str) else None

    async def record_boot(
        self, station_id: str, protocol: OcppVersion, info: StationInfo, ts: datetime
    ) -> None:
        try:
            async with self._write() as conn:
                await conn.execute(
                    t.stations.update().where(t.stations.c.station_id == station_id).values(
                        protocol=protocol.value, vendor=info.vendor, model=info.model,
                        serial_number=info.serial_number, firmware_version=info.firmware_version,
                        last_boot_at=ts, last_seen_at=ts,
                    )
                )
        except BaseException:
            self._creds.forget(station_id)
            raise
        self._creds.patch(station_id, serial_number=info.serial_number)

    async def save_seen(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        stmt = t.stations.update().where(t.stations.c.station_id == sa.bindparam("sid")).values(
            last_seen_at=sa.bindparam("ts")
        )
        async with self._write() as conn:
            await conn.execute(stmt, [{"sid": k, "ts": v} for k, v in seen.items()])

    async def save_connectors(self, states: Sequence[tuple[str, ConnectorState]]) -> None:
        """One upsert statement for all of them."""
        if not states:
            return
        ts = self._db.ts
        rows = [
            (sid, c.evse_id, c.connector_id, c.status, c.error_code, ts(c.updated_at), sid)
            for sid, c in states
        ]
        sql = self._q_connector

        def work(cur: Any) -> None:
            cur.executemany(sql, rows)

        await self._direct(work)

    async def load_connectors(self) -> dict[str, list[ConnectorState]]:
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(t.connectors))).all()
        out: dict[str, list[ConnectorState]] = {}
        for r in rows:
            m = r._mapping
            out.setdefault(m["station_id"], []).append(
                ConnectorState(m["evse_id"], m["connector_id"], m["status"], m["error_code"], m["updated_at"])
            )
        return out

    async def save_variables(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Upsert reported device variables, (station_id, name, value) each, in one statement."""
        if not rows:
            return
        now = self._db.ts(_now())
        params = [(station_id, name, value, now, station_id) for station_id, name, value in rows]
        sql = self._q_variable

        def work(cur: Any) -> None:
            cur.executemany(sql, params)

        await self._direct(work)

    async def load_variables(self) -> dict[str, dict[str, str]]:
        c = t.device_variables.c
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(c.station_id, c.name, c.value))).all()
        out: dict[str, dict[str, str]] = {}
        for station_id, name, value in rows:
            out.setdefault(station_id, {})[name] = value
        return out

    # --- id tags ------------------------------------------------------------------------
    async def get_id_tag(self, id_tag: str) -> IdTag | None:
        async with self._read() as conn:
            row = (await conn.execute(sa.select(t.id_tags).where(t.id_tags.c.id_tag == id_tag))).first()
        if row is None:
            return None
        m = row._mapping
        return IdTag(m["id_tag"], AuthStatus(m["status"]), m["expiry"], m["parent"])

    async def put_id_tag(self, tag: IdTag) -> bool:
        """Insert or replace; True when it was new."""
        async with self._write() as conn:
            res = await conn.execute(
                t.id_tags.update().where(t.id_tags.c.id_tag == tag.id_tag).values(
                    status=tag.status.value, expiry=tag.expiry, parent=tag.parent
                )
            )
            if res.rowcount:
                return False
            await conn.execute(t.id_tags.insert().values(
                id_tag=tag.id_tag, status=tag.status.value, expiry=tag.expiry, parent=tag.parent
            ))
            return True

    async def delete_id_tag(self, id_tag: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(t.id_tags.delete().where(t.id_tags.c.id_tag == id_tag))
        return bool(res.rowcount)

    async def list_id_tags(self) -> list[IdTag]:
        async with self._read() as conn:
            rows = (await conn.execute(sa.select(t.id_tags).order_by(t.id_tags.c.id_tag))).all()
        return [
            IdTag(m["id_tag"], AuthStatus(m["status"]), m["expiry"], m["parent"])
            for m in (r._mapping for r in rows)
        ]

    # --- transactions -------------------------------------------------------------------
    async def start_transaction(
        self, station_id: str, *, evse_id: int, connector_id: int, id_tag: str | None,
        meter_start_wh: float | None, ts: datetime, flags: tuple[str, ...] = (),
    ) -> tuple[Transaction, bool]:
        """1.6 start: the id is the row's integer key; a replay returns the first record."""
        key = f"{station_id}|{connector_id}|{id_tag}|{ts.astimezone(UTC).isoformat()}|{meter_start_wh}"
        item = _Start(
            station_id, evse_id, connector_id, id_tag, meter_start_wh, _utc(ts), ",".join(flags), key
        )
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
            return await self._direct(self._v16_work(batch))
        except Conflict:
            return [await self._v16_alone(item) for item in batch]

    async def _v16_alone(self, item: _V16Item) -> _V16Result:
        for _attempt in range(2):
            try:
                return (await self._direct(self._v16_work([item])))[0]
            except Conflict:
                continue  # a concurrent replay committed first: read it back
        raise StoreUnavailable("could not record a 1.6 transaction message")

    def _v16_work(self, batch: list[_V16Item]) -> Work[list[_V16Result]]:
        received = self._db.ts(_now())

        def work(cur: Any) -> list[_V16Result]:
            return [
                self._start_in(cur, item, received) if isinstance(item, _Start)
                else self._stop_in(cur, item, received)
                for item in batch
            ]
        return work

    def _row(self, row: Sequence[Any]) -> dict[str, Any]:
        m = dict(zip(_TX_COLS, row, strict=True))
        m["started_at"], m["stopped_at"] = self._db.ts_in(m["started_at"]), self._db.ts_in(m["stopped_at"])
        return m

    def _start_in(self, cur: Any, s: _Start, received: Any) -> tuple[Transaction, bool]:
        cur.execute(self._q_tx_by_key, (s.key,))
        row = cur.fetchone()
        if row is not None:
            return _tx_map(self._row(row)), False
        cur.execute(self._q_insert_tx, (
            s.station_id, "~" + uuid.uuid4().hex, OcppVersion.V16.value, s.evse_id, s.connector_id, s.id_tag,
            self._db.ts(s.ts), None, s.meter_start_wh, None, None, s.flags, s.key, received,
        ))
        pk = self._db.inserted_pk(cur)
        cur.execute(self._q_set_tx_id, (str(pk), pk))
        return _tx_map({
            "station_id": s.station_id, "tx_id": str(pk), "evse_id": s.evse_id,
            "connector_id": s.connector_id,
            "id_tag": s.id_tag, "started_at": s.ts, "stopped_at": None, "meter_start_wh": s.meter_start_wh,
            "meter_stop_wh": None, "stop_reason": None, "protocol": OcppVersion.V16.value,
            "last_seq_no": None, "flags": s.flags,
        }), True

    def _stop_in(self, cur: Any, s: _Stop, received: Any) -> StopResult:
        cur.execute(self._q_tx_by_id, (s.station_id, s.tx_id))
        row = cur.fetchone()
        if row is None:
            return self._orphan_stop_in(cur, s, received)
        m = self._row(row)
        if m["stopped_at"] is not None:
            return StopResult(_tx_map(m), replay=True, orphan=False)
        flags, start = m["flags"], m["meter_start_wh"]
        if s.meter_stop_wh is not None and start is not None and s.meter_stop_wh < start:
            flags = _add_flags(flags, "meter_backwards")
        if m["started_at"] is not None and s.ts < m["started_at"]:
            flags = _add_flags(flags, "stop_before_start")
        cur.execute(self._q_stop, (self._db.ts(s.ts), s.meter_stop_wh, s.reason, flags, m["pk"]))
        m.update(stopped_at=s.ts, meter_stop_wh=s.meter_stop_wh, stop_reason=s.reason, flags=flags)
        return StopResult(_tx_map(m), replay=False, orphan=False)

    def _orphan_stop_in(self, cur: Any, s: _Stop, received: Any) -> StopResult:
        orphan_id = f"{s.tx_id}~{s.ts.strftime('%Y%m%dT%H%M%S')}"
        cur.execute(self._q_tx_by_id, (s.station_id, orphan_id))
        row = cur.fetchone()
        if row is not None:
            return StopResult(_tx_map(self._row(row)), replay=True, orphan=True)
        flags = "unknown_transaction"
        cur.execute(self._q_insert_tx, (
            s.station_id, orphan_id, OcppVersion.V16.value, 0, 0, s.id_tag, None, self._db.ts(s.ts),
            None, s.meter_stop_wh, s.reason, flags, None, received,
        ))
        return StopResult(_tx_map({
            "station_id": s.station_id, "tx_id": orphan_id, "evse_id": 0, "connector_id": 0,
            "id_tag": s.id_tag, "started_at": None, "stopped_at": s.ts, "meter_start_wh": None,
            "meter_stop_wh": s.meter_stop_wh, "stop_reason": s.reason, "protocol": OcppVersion.V16.value,
            "last_seq_no": None, "flags": flags,
        }), replay=False, orphan=True)

    async def apply_transaction_event(self, r: TransactionEventRecord) -> EventResult:
        """2.0.1 event: one row per (station, transaction, seqNo); the transaction row is upserted.

        ``Updated`` events of a transaction already in memory take the group-commit path:
        concurrent ones from many stations share one commit (two executemany statements);
        everything else (Started, Ended, out-of-order, unknown transactions) commits alone.
        """
        cached = self._tx_cache.get((r.station_id, r.tx_id))
        if (
            r.event_type == "Updated" and cached is not None and cached["stopped_at"] is None
            and (cached["last_seq_no"] is None or r.seq_no > cached["last_seq_no"])
        ):
            return await self._batcher.submit(r)
        return await self._apply_alone(r)

    async def _apply_alone(self, r: TransactionEventRecord) -> EventResult:
        """One event in its own commit (Started, Ended, out of order, or not cached)."""
        try:
            async with self._serialised():
                created, state, ended_now = await self._db.run(self._alone_work(r))
        except Conflict:
            # the (station, transaction, seqNo) row exists: a retry; return what is stored
            tx = await self.get_transaction(r.station_id, r.tx_id)
            if tx is None:
                raise StoreUnavailable("transaction event replay without transaction") from None
            return EventResult(tx, replay=True, created=False, ended_now=False)
        self._remember(state)
        return EventResult(_tx_map(state), replay=False, created=created, ended_now=ended_now)

    def _alone_work(self, r: TransactionEventRecord) -> Work[tuple[bool, dict[str, Any], bool]]:
        event = self._event_params(r, self._db.ts(_now()))

        def work(cur: Any) -> tuple[bool, dict[str, Any], bool]:
            cur.execute(self._q_event, event)
            cur.execute(self._q_tx_by_id, (r.station_id, r.tx_id))
            row = cur.fetchone()
            if row is None:
                current = self._insert_v201_in(cur, r, event[7])
                if r.event_type != "Ended":
                    return True, current, False
            else:
                current = self._row(row)
            state, ended_now = advance(current, r, first=row is None)
            self._update_in(cur, current, state)
            return row is None, state, ended_now
        return work

    def _event_params(self, r: TransactionEventRecord, received: Any) -> tuple[Any, ...]:
        return (r.station_id, r.tx_id, r.seq_no, r.event_type, r.trigger_reason, self._db.ts(r.ts), r.offline,
                received, r.meter_wh)

    def _insert_v201_in(self, cur: Any, r: TransactionEventRecord, received: Any) -> dict[str, Any]:
        """The transaction row an event creates (also without a Started event: flagged)."""
        flags = "" if r.event_type == "Started" else "start_missing"
        cur.execute(self._q_insert_v201, (
            r.station_id, r.tx_id, OcppVersion.V201.value, r.evse_id, r.connector_id, r.id_tag,
            self._db.ts(r.ts), r.meter_wh, r.meter_wh, r.seq_no, flags, received,
        ))
        return {
            "pk": self._db.inserted_pk(cur), "station_id": r.station_id, "tx_id": r.tx_id,
            "protocol": OcppVersion.V201.value, "evse_id": r.evse_id, "connector_id": r.connector_id,
            "id_tag": r.id_tag, "started_at": _utc(r.ts), "stopped_at": None, "meter_start_wh": r.meter_wh,
            "meter_stop_wh": None, "meter_last_wh": r.meter_wh, "stop_reason": None, "last_seq_no": r.seq_no,
            "flags": flags,
        }

    def _update_in(self, cur: Any, current: dict[str, Any], state: dict[str, Any]) -> None:
        """Write the columns of the transaction row that ``state`` changed."""
        changed = [k for k, v in state.items() if current.get(k) != v]
        if not changed:
            return
        ts = self._db.ts
        columns = ", ".join(f"{k} = ?" for k in changed)  # names from the row: never from outside
        sql = self._db.sql(f"UPDATE transactions SET {columns} WHERE pk = ?")
        cur.execute(sql, (*(ts(state[k]) if k in _TIMESTAMPS else state[k] for k in changed), state["pk"]))

    def _remember(self, state: dict[str, Any]) -> None:
        key = (state["station_id"], state["tx_id"])
        if state["stopped_at"] is not None:
            self._tx_cache.pop(key, None)
        elif key in self._tx_cache or len(self._tx_cache) < _TX_CACHE_MAX:
            self._tx_cache[key] = state

    async def _apply_batch(self, batch: list[TransactionEventRecord]) -> list[EventResult]:
        """Group commit of fast-path events: two executemany statements and one commit.

        Events of one transaction in the same batch advance one after the other. On a conflict
        (a replayed seqNo) every event is retried alone, as is an event whose transaction left
        the cache (ended) while it waited.
        """
        try:
            async with self._serialised():
                states, latest = self._advance_batch(batch)
                if latest:
                    await self._db.run(self._fast_work(batch, states, latest))
        except Conflict:
            return [await self._apply_alone(r) for r in batch]
        for st in latest.values():
            self._remember(st)
        results: list[EventResult] = []
        for r, state in zip(batch, states, strict=True):
            if state is None:
                results.append(await self._apply_alone(r))
            else:  # positional: EventResult(transaction, replay, created, ended_now)
                results.append(EventResult(_tx_map(state), False, False, False))
        return results

    def _advance_batch(
        self, batch: list[TransactionEventRecord]
    ) -> tuple[list[dict[str, Any] | None], dict[tuple[str, str], dict[str, Any]]]:
        """Each event's new transaction row (None: not cached), and the last row per transaction."""
        latest: dict[tuple[str, str], dict[str, Any]] = {}
        states: list[dict[str, Any] | None] = []
        for r in batch:
            key = (r.station_id, r.tx_id)
            prev = latest.get(key) or self._tx_cache.get(key)
            if prev is None:
                states.append(None)
                continue
            state, _ = advance(prev, r, first=False)
            latest[key] = state
            states.append(state)
        return states, latest

    def _fast_work(
        self, batch: list[TransactionEventRecord], states: list[dict[str, Any] | None],
        latest: dict[tuple[str, str], dict[str, Any]],
    ) -> Work[None]:
        received = self._db.ts(_now())
        events = [
            self._event_params(r, received) for r, st in zip(batch, states, strict=True) if st is not None
        ]
        updates = [_fast_update_params(st) for st in latest.values()]
        q_event, q_update = self._q_event, self._q_fast_update

        def work(cur: Any) -> None:
            cur.executemany(q_event, events)
            cur.executemany(q_update, updates)
        return work

    async def get_transaction(self, station_id: str, tx_id: str) -> Transaction | None:
        c = t.transactions.c
        async with self._read() as conn:
            row = (await conn.execute(
                sa.select(t.transactions).where((c.station_id == station_id) & (c.tx_id == tx_id))
            )).first()
        return _tx(row) if row else None

    async def list_transactions(
        self, *, station_id: str | None = None, active: bool | None = None, limit: int = 500
    ) -> list[Transaction]:
        c = t.transactions.c
        q = sa.select(t.transactions)
        if station_id is not None:
            q = q.where(c.station_id == station_id)
        if active is True:
            q = q.where(c.stopped_at.is_(None))
        elif active is False:
            q = q.where(c.stopped_at.is_not(None))
        q = q.order_by(c.pk.desc()).limit(limit)
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        return [_tx(r) for r in rows]

    # --- security events ----------------------------------------------------------------
    async def save_security_event(
        self, station_id: str, kind: str, ts: datetime, tech_info: str | None
    ) -> None:
        async with self._write() as conn:
            await conn.execute(t.security_events.insert().values(
                station_id=station_id, kind=kind, ts=ts, tech_info=tech_info, received_at=_now()
            ))

    async def list_security_events(self, station_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.security_events).order_by(t.security_events.c.pk.desc()).limit(500)
        if station_id is not None:
            q = q.where(t.security_events.c.station_id == station_id)
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        return [dict(r._mapping) for r in rows]


    # --- credentials and certificates (csms.security.records.SecurityStore) -------------
    async def get_credentials(self, station_id: str) -> StationCredentials | None:
        """From memory (``csms.store.credentials``): the handshake of every reconnection asks."""
        return await self._creds.get(station_id)

    def _credentials_query(self) -> sa.Select[Any]:
        st, rot = t.stations.c, t.password_rotations.c
        return sa.select(
            st.station_id, st.security_profile, st.password_hash, st.serial_number, rot.pending_hash,
            rot.base_hash,
        ).select_from(t.stations.outerjoin(t.password_rotations, rot.station_id == st.station_id))

    async def _load_credentials(self, station_id: str) -> StationCredentials | None:
        q = self._credentials_query().where(t.stations.c.station_id == station_id)
        async with self._read() as conn:
            row = (await conn.execute(q)).first()
        return _credentials_row(tuple(row), None) if row is not None else None

    async def _load_all_credentials(
        self, known: Mapping[str, StationCredentials]
    ) -> dict[str, StationCredentials]:
        """Every station, off the event loop on SQLite (~30 ms for 20k); unchanged entries are kept
        (a reload then leaves no long-lived garbage for the collector)."""
        query = self._q_all_credentials

        def work(cur: Any) -> dict[str, StationCredentials]:
            cur.execute(query)
            return {row[0]: _credentials_row(row, known.get(row[0])) for row in cur.fetchall()}

        return await self._db.read(work)

    async def set_pending_password(self, station_id: str, password_hash: str) -> None:
        rot = t.password_rotations
        try:
            async with self._write() as conn:
                base = (await conn.execute(
                    sa.select(t.stations.c.password_hash).where(t.stations.c.station_id == station_id)
                )).scalar()
                await conn.execute(rot.delete().where(rot.c.station_id == station_id))
                await conn.execute(rot.insert().values(
                    station_id=station_id, pending_hash=password_hash, base_hash=base, requested_at=_now()
                ))
        finally:
            self._creds.forget(station_id)

    async def finish_password_rotation(
        self, station_id: str, *, accepted: bool, pending_hash: str | None = None
    ) -> None:
        """Accepted: the pending hash becomes the password; either way the pending one is dropped.

        With ``pending_hash``, nothing happens unless that is still the pending one.
        """
        rot = t.password_rotations
        try:
            async with self._write() as conn:
                pending = (await conn.execute(
                    sa.select(rot.c.pending_hash).where(rot.c.station_id == station_id)
                )).scalar()
                if pending_hash is not None and pending != pending_hash:
                    return
                if accepted and isinstance(pending, str):
                    await conn.execute(t.stations.update().where(
                        t.stations.c.station_id == station_id
                    ).values(password_hash=pending))
                await conn.execute(rot.delete().where(rot.c.station_id == station_id))
        finally:
            self._creds.forget(station_id)

    async def save_certificate(self, cert: IssuedCertificate) -> None:
        async with self._write() as conn:
            await conn.execute(t.certificates.insert().values(
                serial=cert.serial, station_id=cert.station_id, subject=cert.subject,
                not_before=cert.not_before, not_after=cert.not_after, pem=cert.pem,
                status=cert.status, issued_at=_now(),
            ))

    async def set_certificate_status(self, serial: str, status: str) -> None:
        async with self._write() as conn:
            await conn.execute(
                t.certificates.update().where(t.certificates.c.serial == serial).values(status=status)
            )

    async def list_certificates(self, station_id: str | None = None) -> list[IssuedCertificate]:
        c = t.certificates.c
        q = sa.select(t.certificates).order_by(c.issued_at.desc()).limit(500)
        if station_id is not None:
            q = q.where(c.station_id == station_id)
        async with self._read() as conn:
            rows = (await conn.execute(q)).all()
        return [
            IssuedCertificate(m["station_id"], m["serial"], m["subject"], m["not_before"],
                              m["not_after"], m["pem"], m["status"])
            for m in (r._mapping for r in rows)
        ]
