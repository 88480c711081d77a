"""Tariff versions and assignments, transaction meter readings and charge detail records."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from csms.store import schema as t
from csms.store.engine import Database, now
from csms.tariffs import codec
from csms.tariffs.cdr import Cdr
from csms.tariffs.model import Tariff
from csms.tariffs.pricing import MeterReading, decimal_text


@dataclass(frozen=True, slots=True)
class TariffVersion:
    tariff: Tariff
    created_at: datetime
    retired_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CdrQuery:
    """CDRs of sessions that stopped in [since, until), optionally of one station or site, after a
    cursor position (stopped_at, cdr_id), oldest first."""

    since: datetime | None = None
    until: datetime | None = None
    station_id: str | None = None
    site_id: str | None = None
    after: tuple[datetime, int] | None = None
    limit: int = 100


def _version(row: sa.Row[Any]) -> TariffVersion:
    tariff = codec.from_json(json.loads(row.body), tariff_id=row.tariff_id, version=row.version)
    return TariffVersion(tariff, row.created_at, row.retired_at)


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def _cdr(row: sa.Row[Any]) -> Cdr:
    m = row._mapping
    return Cdr(
        m["station_id"],
        m["tx_id"],
        m["site_id"],
        m["evse_id"],
        m["connector_id"],
        m["id_tag"],
        m["started_at"],
        m["stopped_at"],
        Decimal(m["energy_wh"]),
        m["duration_s"],
        m["idle_s"],
        m["tariff_id"],
        m["tariff_version"],
        m["currency"],
        _dec(m["excl_vat"]),
        _dec(m["vat"]),
        _dec(m["incl_vat"]),
        tuple(json.loads(m["breakdown"])),
        m["stop_reason"],
        tuple(json.loads(m["signed_data"])),
        tuple(f for f in m["flags"].split(",") if f),
        m["cdr_id"],
        m["created_at"],
        m["repriced_at"],
    )


def _cdr_values(c: Cdr) -> dict[str, Any]:
    return {
        "site_id": c.site_id,
        "evse_id": c.evse_id,
        "connector_id": c.connector_id,
        "id_tag": c.id_tag,
        "started_at": c.started_at,
        "stopped_at": c.stopped_at,
        "energy_wh": decimal_text(c.energy_wh, 3),
        "duration_s": c.duration_s,
        "idle_s": c.idle_s,
        "tariff_id": c.tariff_id,
        "tariff_version": c.tariff_version,
        "currency": c.currency,
        "excl_vat": None if c.excl_vat is None else str(c.excl_vat),
        "vat": None if c.vat is None else str(c.vat),
        "incl_vat": None if c.incl_vat is None else str(c.incl_vat),
        "breakdown": json.dumps(list(c.lines)),
        "stop_reason": c.stop_reason,
        "signed_data": json.dumps(list(c.signed_data)),
        "flags": ",".join(c.flags)[:255],
    }


class SqlTariffs:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- tariffs -------------------------------------------------------------------------
    async def save_tariff(self, tariff: Tariff) -> TariffVersion:
        """Store ``tariff`` as its next version (1 when new) and return that version."""
        c = t.tariffs.c
        at = now()
        async with self._db.write() as conn:
            latest = (
                await conn.execute(sa.select(sa.func.max(c.version)).where(c.tariff_id == tariff.tariff_id))
            ).scalar() or 0
            version = int(latest) + 1
            body = codec.to_json(tariff)
            await conn.execute(
                t.tariffs.insert().values(
                    tariff_id=tariff.tariff_id,
                    version=version,
                    body=json.dumps(body),
                    created_at=at,
                )
            )
        return TariffVersion(codec.from_json(body, tariff_id=tariff.tariff_id, version=version), at)

    async def get_tariff(self, tariff_id: str, version: int | None = None) -> TariffVersion | None:
        c = t.tariffs.c
        q = sa.select(t.tariffs).where(c.tariff_id == tariff_id)
        q = q.where(c.version == version) if version is not None else q.order_by(c.version.desc()).limit(1)
        async with self._db.read() as conn:
            row = (await conn.execute(q)).first()
        return None if row is None else _version(row)

    async def tariff_versions(self, tariff_id: str) -> list[TariffVersion]:
        c = t.tariffs.c
        async with self._db.read() as conn:
            rows = (
                await conn.execute(sa.select(t.tariffs).where(c.tariff_id == tariff_id).order_by(c.version))
            ).all()
        return [_version(r) for r in rows]

    async def list_tariffs(self) -> list[TariffVersion]:
        """The latest version of every tariff, by id."""
        c = t.tariffs.c
        latest = sa.select(c.tariff_id, sa.func.max(c.version).label("v")).group_by(c.tariff_id).subquery()
        q = sa.select(t.tariffs).join(latest, (latest.c.tariff_id == c.tariff_id) & (latest.c.v == c.version))
        async with self._db.read() as conn:
            rows = (await conn.execute(q.order_by(c.tariff_id))).all()
        return [_version(r) for r in rows]

    async def tariff_at(self, tariff_id: str, at: datetime) -> TariffVersion | None:
        """The version valid at ``at`` (the newest created by then); None if none was, or the
        tariff was withdrawn by then."""
        c = t.tariffs.c
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(t.tariffs)
                    .where(c.tariff_id == tariff_id, c.created_at <= at)
                    .order_by(c.version.desc())
                    .limit(1)
                )
            ).first()
        if row is None:
            return None
        found = _version(row)
        return None if found.retired_at is not None and found.retired_at <= at else found

    async def retire_tariff(self, tariff_id: str) -> bool:
        """Withdraw the tariff from now on; its assignments are removed, its versions kept."""
        c = t.tariffs.c
        async with self._db.write() as conn:
            latest = (
                await conn.execute(sa.select(sa.func.max(c.version)).where(c.tariff_id == tariff_id))
            ).scalar()
            if latest is None:
                return False
            retired = (
                await conn.execute(
                    sa.select(c.retired_at).where(c.tariff_id == tariff_id, c.version == latest)
                )
            ).scalar()
            if retired is not None:
                return False
            await conn.execute(
                t.tariffs.update()
                .where(c.tariff_id == tariff_id, c.version == latest)
                .values(retired_at=now())
            )
            await conn.execute(
                t.tariff_assignments.delete().where(t.tariff_assignments.c.tariff_id == tariff_id)
            )
        return True

    # --- assignments ---------------------------------------------------------------------
    async def assign(self, scope: str, target: str, tariff_id: str) -> None:
        a = t.tariff_assignments.c
        async with self._db.write() as conn:
            await conn.execute(t.tariff_assignments.delete().where(a.scope == scope, a.target == target))
            await conn.execute(
                t.tariff_assignments.insert().values(scope=scope, target=target, tariff_id=tariff_id)
            )

    async def unassign(self, scope: str, target: str) -> bool:
        a = t.tariff_assignments.c
        async with self._db.write() as conn:
            res = await conn.execute(
                t.tariff_assignments.delete().where(a.scope == scope, a.target == target)
            )
        return bool(res.rowcount)

    async def assignments(self) -> list[tuple[str, str, str]]:
        """Every (scope, target, tariff_id)."""
        a = t.tariff_assignments.c
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(t.tariff_assignments).order_by(a.scope, a.target))).all()
        return [(r.scope, r.target, r.tariff_id) for r in rows]

    # --- the tariff each transaction started under ----------------------------------------
    async def remember_tariff(
        self, station_id: str, tx_id: str, tariff_id: str, version: int, zone: str
    ) -> None:
        """Keep the tariff a transaction started under (the first one kept stays)."""
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    t.transaction_tariffs.insert().values(
                        station_id=station_id,
                        tx_id=tx_id,
                        tariff_id=tariff_id,
                        version=version,
                        time_zone=zone,
                    )
                )
        except IntegrityError:
            pass

    async def tariff_of(self, station_id: str, tx_id: str) -> tuple[str, int, str] | None:
        """(tariff_id, version, time zone) the transaction started under, if kept."""
        c = t.transaction_tariffs.c
        async with self._db.read() as conn:
            row = (
                await conn.execute(
                    sa.select(c.tariff_id, c.version, c.time_zone).where(
                        c.station_id == station_id, c.tx_id == tx_id
                    )
                )
            ).first()
        return None if row is None else (row.tariff_id, row.version, row.time_zone)

    # --- readings ------------------------------------------------------------------------
    async def add_readings(self, rows: Sequence[tuple[str, str, MeterReading]]) -> None:
        """Keep (station, transaction, reading) rows; one already kept for that instant is left as is."""
        if not rows:
            return
        stmt = sa.text(
            "INSERT INTO transaction_readings (station_id, tx_id, at, register_wh)"
            " VALUES (:station_id, :tx_id, :at, :register_wh) ON CONFLICT DO NOTHING"
        ).bindparams(sa.bindparam("at", type_=t.UtcDateTime()))
        async with self._db.write() as conn:
            await conn.execute(
                stmt,
                [
                    {"station_id": s, "tx_id": x, "at": r.at, "register_wh": str(r.register_wh)}
                    for s, x, r in rows
                ],
            )

    async def readings(self, station_id: str, tx_id: str) -> list[MeterReading]:
        r = t.transaction_readings.c
        q = sa.select(r.at, r.register_wh).where(r.station_id == station_id, r.tx_id == tx_id).order_by(r.at)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [MeterReading(row.at, Decimal(row.register_wh)) for row in rows]

    # --- CDRs ----------------------------------------------------------------------------
    async def insert_cdr(self, cdr: Cdr) -> bool:
        """Keep the CDR; False when that transaction has one already (idempotent)."""
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    t.cdrs.insert().values(
                        station_id=cdr.station_id, tx_id=cdr.tx_id, created_at=now(), **_cdr_values(cdr)
                    )
                )
        except IntegrityError:
            return False
        return True

    async def replace_cost(self, cdr_id: int, cdr: Cdr) -> None:
        """A re-priced CDR (explicit, audited by the API)."""
        async with self._db.write() as conn:
            await conn.execute(
                t.cdrs.update().where(t.cdrs.c.cdr_id == cdr_id).values(repriced_at=now(), **_cdr_values(cdr))
            )

    async def get_cdr(self, cdr_id: int) -> Cdr | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(t.cdrs).where(t.cdrs.c.cdr_id == cdr_id))).first()
        return None if row is None else _cdr(row)

    async def cdr_of(self, station_id: str, tx_id: str) -> Cdr | None:
        c = t.cdrs.c
        async with self._db.read() as conn:
            row = (
                await conn.execute(sa.select(t.cdrs).where(c.station_id == station_id, c.tx_id == tx_id))
            ).first()
        return None if row is None else _cdr(row)

    async def list_cdrs(self, query: CdrQuery) -> list[Cdr]:
        """A page of CDRs by (stopped_at, cdr_id), oldest first (a keyset cursor: bounded memory)."""
        c = t.cdrs.c
        q = sa.select(t.cdrs)
        if query.since is not None:
            q = q.where(c.stopped_at >= query.since)
        if query.until is not None:
            q = q.where(c.stopped_at < query.until)
        if query.station_id is not None:
            q = q.where(c.station_id == query.station_id)
        if query.site_id is not None:
            q = q.where(c.site_id == query.site_id)
        if query.after is not None:
            at, cdr_id = query.after
            q = q.where(sa.or_(c.stopped_at > at, sa.and_(c.stopped_at == at, c.cdr_id > cdr_id)))
        q = q.order_by(c.stopped_at, c.cdr_id).limit(query.limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_cdr(r) for r in rows]

    async def ended_without_cdr(self, limit: int = 500) -> list[tuple[str, str]]:
        """(station, transaction) of ended transactions that have no CDR yet."""
        x, c = t.transactions.c, t.cdrs.c
        q = (
            sa.select(x.station_id, x.tx_id)
            .select_from(
                t.transactions.outerjoin(t.cdrs, (c.station_id == x.station_id) & (c.tx_id == x.tx_id))
            )
            .where(x.stopped_at.is_not(None), c.cdr_id.is_(None))
            .order_by(x.stopped_at)
            .limit(limit)
        )
        async with self._db.read() as conn:
            return [(r.station_id, r.tx_id) for r in (await conn.execute(q)).all()]
