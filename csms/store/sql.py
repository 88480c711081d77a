"""The ``Store`` on SQLAlchemy Core: SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when scaled out.

Every write runs in its own transaction and is committed before the method returns
(the data-integrity contract: no CallResult before a durable commit). SQLite writes
are serialised through one lock; PostgreSQL relies on unique constraints.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from csms.core.model import (
    AuthStatus,
    ConnectorState,
    IdTag,
    OcppVersion,
    Station,
    StationInfo,
    Transaction,
)
from csms.core.ports import EventResult, StopResult, TransactionEventRecord
from csms.errors import StoreUnavailable
from csms.security.records import IssuedCertificate, StationCredentials
from csms.store import schema as t
from csms.store.group_commit import GroupCommit


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


def _flags(raw: str | None) -> tuple[str, ...]:
    return tuple(f for f in (raw or "").split(",") if f)


def _add_flags(raw: str | None, *new: str) -> str:
    flags = list(_flags(raw))
    for f in new:
        if f not in flags:
            flags.append(f)
    return ",".join(flags)


_TX_CACHE_MAX = 200_000
_MUTABLE = ("last_seq_no", "meter_last_wh", "meter_start_wh", "flags", "id_tag", "evse_id", "connector_id",
            "started_at", "stopped_at", "stop_reason", "meter_stop_wh")


def _event_row(r: TransactionEventRecord) -> dict[str, Any]:
    return {
        "station_id": r.station_id, "tx_id": r.tx_id, "seq_no": r.seq_no, "event_type": r.event_type,
        "trigger_reason": r.trigger_reason, "ts": r.ts, "offline": r.offline, "received_at": _now(),
        "meter_wh": r.meter_wh,
    }


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


def _tx_map(m: Mapping[str, Any]) -> Transaction:
    return Transaction(
        station_id=m["station_id"], tx_id=m["tx_id"], evse_id=m["evse_id"],
        connector_id=m["connector_id"], id_tag=m["id_tag"], started_at=m["started_at"],
        stopped_at=m["stopped_at"], meter_start_wh=m["meter_start_wh"],
        meter_stop_wh=m["meter_stop_wh"], stop_reason=m["stop_reason"],
        protocol=OcppVersion(m["protocol"]), last_seq_no=m["last_seq_no"], flags=_flags(m["flags"]),
    )


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

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        self._tx_cache: dict[tuple[str, str], dict[str, Any]] = {}
        self._batcher = GroupCommit(self._apply_batch)

    @classmethod
    async def open(cls, db: str, *, synchronous: str = "FULL") -> SqlStore:
        """Connect, apply migrations, and return a ready store."""
        url = database_url(db)
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            sync_mode = synchronous.upper()

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                cur = dbapi_conn.cursor()
                if path != ":memory:":
                    cur.execute("PRAGMA journal_mode=WAL")
                cur.execute(f"PRAGMA synchronous={sync_mode}")
                cur.execute("PRAGMA foreign_keys=ON")
                cur.close()
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        store = cls(engine)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(t.migrate)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"cannot open database {db!r}: {exc}") from exc
        return store

    async def close(self) -> None:
        await self._batcher.close()
        await self.engine.dispose()

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
        return _station(row)

    async def delete_station(self, station_id: str) -> bool:
        async with self._write() as conn:
            res = await conn.execute(t.stations.delete().where(t.stations.c.station_id == station_id))
            await conn.execute(t.connectors.delete().where(t.connectors.c.station_id == station_id))
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
        async with self._write() as conn:
            await conn.execute(
                t.stations.update().where(t.stations.c.station_id == station_id).values(
                    protocol=protocol.value, vendor=info.vendor, model=info.model,
                    serial_number=info.serial_number, firmware_version=info.firmware_version,
                    last_boot_at=ts, last_seen_at=ts,
                )
            )

    async def save_seen(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        stmt = t.stations.update().where(t.stations.c.station_id == sa.bindparam("sid")).values(
            last_seen_at=sa.bindparam("ts")
        )
        async with self._write() as conn:
            await conn.execute(stmt, [{"sid": k, "ts": v} for k, v in seen.items()])

    async def save_connectors(self, states: Sequence[tuple[str, ConnectorState]]) -> None:
        if not states:
            return
        async with self._write() as conn:
            for station_id, s in states:
                key = (
                    (t.connectors.c.station_id == station_id)
                    & (t.connectors.c.evse_id == s.evse_id)
                    & (t.connectors.c.connector_id == s.connector_id)
                )
                res = await conn.execute(
                    t.connectors.update().where(key).values(
                        status=s.status, error_code=s.error_code, updated_at=s.updated_at
                    )
                )
                if not res.rowcount:
                    await conn.execute(t.connectors.insert().values(
                        station_id=station_id, evse_id=s.evse_id, connector_id=s.connector_id,
                        status=s.status, error_code=s.error_code, updated_at=s.updated_at,
                    ))

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
        for _attempt in range(2):
            try:
                async with self._write() as conn:
                    row = (await conn.execute(
                        sa.select(t.transactions).where(t.transactions.c.start_key == key)
                    )).first()
                    if row is not None:
                        return _tx(row), False
                    res = await conn.execute(t.transactions.insert().values(
                        station_id=station_id, tx_id=key, protocol=OcppVersion.V16.value,
                        evse_id=evse_id, connector_id=connector_id, id_tag=id_tag, started_at=ts,
                        meter_start_wh=meter_start_wh, flags=",".join(flags), start_key=key,
                        received_at=_now(),
                    ))
                    pk = res.inserted_primary_key[0] if res.inserted_primary_key else None
                    await conn.execute(
                        t.transactions.update().where(t.transactions.c.pk == pk).values(tx_id=str(pk))
                    )
                    row = (await conn.execute(
                        sa.select(t.transactions).where(t.transactions.c.pk == pk)
                    )).one()
                    return _tx(row), True
            except IntegrityError:
                continue  # a concurrent replay committed first: read it back
        raise StoreUnavailable("could not record StartTransaction")

    async def stop_transaction(
        self, station_id: str, tx_id: str, *, meter_stop_wh: float | None, ts: datetime,
        reason: str | None, id_tag: str | None,
    ) -> StopResult:
        """1.6 stop: replays return the stored record; unknown ids are kept as orphans."""
        c = t.transactions.c
        async with self._write() as conn:
            row = (await conn.execute(
                sa.select(t.transactions).where((c.station_id == station_id) & (c.tx_id == tx_id))
            )).first()
            if row is None:
                orphan_id = f"{tx_id}~{ts.astimezone(UTC).strftime('%Y%m%dT%H%M%S')}"
                row = (await conn.execute(
                    sa.select(t.transactions).where((c.station_id == station_id) & (c.tx_id == orphan_id))
                )).first()
                if row is not None:
                    return StopResult(_tx(row), replay=True, orphan=True)
                await conn.execute(t.transactions.insert().values(
                    station_id=station_id, tx_id=orphan_id, protocol=OcppVersion.V16.value,
                    evse_id=0, connector_id=0, id_tag=id_tag, started_at=None, stopped_at=ts,
                    meter_stop_wh=meter_stop_wh, stop_reason=reason, flags="unknown_transaction",
                    received_at=_now(),
                ))
                row = (await conn.execute(
                    sa.select(t.transactions).where((c.station_id == station_id) & (c.tx_id == orphan_id))
                )).one()
                return StopResult(_tx(row), replay=False, orphan=True)
            if row._mapping["stopped_at"] is not None:
                return StopResult(_tx(row), replay=True, orphan=False)
            flags = row._mapping["flags"]
            start = row._mapping["meter_start_wh"]
            if meter_stop_wh is not None and start is not None and meter_stop_wh < start:
                flags = _add_flags(flags, "meter_backwards")
            started = row._mapping["started_at"]
            if started is not None and ts < started:
                flags = _add_flags(flags, "stop_before_start")
            await conn.execute(t.transactions.update().where(c.pk == row._mapping["pk"]).values(
                stopped_at=ts, meter_stop_wh=meter_stop_wh, stop_reason=reason, flags=flags,
            ))
            row = (await conn.execute(sa.select(t.transactions).where(c.pk == row._mapping["pk"]))).one()
            return StopResult(_tx(row), replay=False, orphan=False)

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
        c = t.transactions.c
        where = (c.station_id == r.station_id) & (c.tx_id == r.tx_id)
        try:
            async with self._write() as conn:
                await conn.execute(t.transaction_events.insert().values(_event_row(r)))
                row = (await conn.execute(sa.select(t.transactions).where(where))).first()
                created = row is None
                if row is None:
                    flags = "" if r.event_type == "Started" else "start_missing"
                    await conn.execute(t.transactions.insert().values(
                        station_id=r.station_id, tx_id=r.tx_id, protocol=OcppVersion.V201.value,
                        evse_id=r.evse_id, connector_id=r.connector_id, id_tag=r.id_tag,
                        started_at=r.ts, received_at=_now(), flags=flags,
                        meter_start_wh=r.meter_wh, meter_last_wh=r.meter_wh, last_seq_no=r.seq_no,
                    ))
                    row = (await conn.execute(sa.select(t.transactions).where(where))).one()
                current = dict(row._mapping)
                state, ended_now = current, False
                if not created or r.event_type == "Ended":
                    state, ended_now = advance(current, r, first=created)
                    changed = {k: v for k, v in state.items() if current.get(k) != v}
                    if changed:
                        stmt = t.transactions.update().where(c.pk == current["pk"]).values(**changed)
                        await conn.execute(stmt)
        except IntegrityError:
            # the (station, transaction, seqNo) row exists: a retry; return what is stored
            tx = await self.get_transaction(r.station_id, r.tx_id)
            if tx is None:
                raise StoreUnavailable("transaction event replay without transaction") from None
            return EventResult(tx, replay=True, created=False, ended_now=False)
        self._remember(state)
        return EventResult(_tx_map(state), replay=False, created=created, ended_now=ended_now)

    def _remember(self, state: dict[str, Any]) -> None:
        key = (state["station_id"], state["tx_id"])
        if state["stopped_at"] is not None:
            self._tx_cache.pop(key, None)
        elif key in self._tx_cache or len(self._tx_cache) < _TX_CACHE_MAX:
            self._tx_cache[key] = state

    async def _apply_batch(self, batch: list[TransactionEventRecord]) -> list[EventResult]:
        """Group commit of fast-path events; on any conflict, each event is retried alone."""
        states = []
        for r in batch:
            cached = self._tx_cache[(r.station_id, r.tx_id)]
            state, _ = advance(cached, r, first=False)
            states.append(state)
        c = t.transactions.c
        update = t.transactions.update().where(c.pk == sa.bindparam("_pk")).values(
            {k: sa.bindparam(k) for k in _MUTABLE}
        )
        try:
            async with self._write() as conn:
                await conn.execute(t.transaction_events.insert(), [_event_row(r) for r in batch])
                params = [{"_pk": st["pk"], **{k: st[k] for k in _MUTABLE}} for st in states]
                await conn.execute(update, params)
        except IntegrityError:
            return [await self._apply_alone(r) for r in batch]
        for st in states:
            self._remember(st)
        return [EventResult(_tx_map(st), replay=False, created=False, ended_now=False) for st in states]

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
        st, rot = t.stations.c, t.password_rotations.c
        q = sa.select(
            st.security_profile, st.password_hash, st.serial_number, rot.pending_hash, rot.base_hash
        ).select_from(
            t.stations.outerjoin(t.password_rotations, rot.station_id == st.station_id)
        ).where(st.station_id == station_id)
        async with self._read() as conn:
            row = (await conn.execute(q)).first()
        if row is None:
            return None
        m = row._mapping
        pending = m["pending_hash"] if m["base_hash"] == m["password_hash"] else None
        return StationCredentials(
            station_id, m["security_profile"], m["password_hash"], pending, m["serial_number"]
        )

    async def set_pending_password(self, station_id: str, password_hash: str) -> None:
        rot = t.password_rotations
        async with self._write() as conn:
            base = (await conn.execute(
                sa.select(t.stations.c.password_hash).where(t.stations.c.station_id == station_id)
            )).scalar()
            await conn.execute(rot.delete().where(rot.c.station_id == station_id))
            await conn.execute(rot.insert().values(
                station_id=station_id, pending_hash=password_hash, base_hash=base, requested_at=_now()
            ))

    async def finish_password_rotation(
        self, station_id: str, *, accepted: bool, pending_hash: str | None = None
    ) -> None:
        """Accepted: the pending hash becomes the password; either way the pending one is dropped.

        With ``pending_hash``, nothing happens unless that is still the pending one.
        """
        rot = t.password_rotations
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
