"""Singleton leases in the shared database (``csms.cluster``): claim, release, list.

A claim is one statement (``INSERT … ON CONFLICT DO UPDATE … WHERE … RETURNING``), so two nodes
claiming at once are ordered by the row lock: one gets the row, the other gets nothing. Expiry
is judged by the database's clock on PostgreSQL (nodes' clocks may differ); SQLite has one
process and uses this process's clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from csms.store.engine import Database, now
from csms.store.schema import UtcDateTime, cluster_leases

LIST_LIMIT = 200
"""The most leases listed: there is one per singleton loop, a handful."""


@dataclass(frozen=True, slots=True)
class LeaseRow:
    name: str
    holder: str
    token: int
    expires_at: datetime
    acquired_at: datetime
    renewed_at: datetime


@dataclass(frozen=True, slots=True)
class Claim:
    """A granted claim: the fencing token and the expiry the database recorded."""

    token: int
    expires_at: datetime


class SqlLeases:
    """The ``cluster_leases`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _now(self) -> sa.ColumnElement[datetime]:
        if self.db.sqlite:
            return sa.literal(now(), UtcDateTime)
        return sa.func.statement_timestamp(type_=UtcDateTime)

    def _later(self, ttl_s: float) -> sa.ColumnElement[datetime]:
        if self.db.sqlite:
            return sa.literal(now() + timedelta(seconds=ttl_s), UtcDateTime)
        return sa.type_coerce(
            sa.func.statement_timestamp() + sa.func.make_interval(0, 0, 0, 0, 0, 0, ttl_s), UtcDateTime
        )

    async def claim(self, name: str, node: str, token: int | None, ttl_s: float) -> Claim | None:
        """Renew ``node``'s lease ``name`` (it holds ``token`` and the lease is unexpired: the token
        stays) or take it over when expired or absent (the token grows). None: another node holds it,
        or ``node`` lost it (``token`` is not the current one) and it has not expired yet."""
        t = cluster_leases
        at, until = self._now(), self._later(ttl_s)
        mine = token if token is not None else -1
        insert = (postgresql.insert(t) if not self.db.sqlite else sqlite.insert(t)).values(
            name=name, holder=node, token=1, expires_at=until, acquired_at=at, renewed_at=at,
        )
        renewal = sa.and_(t.c.holder == node, t.c.token == mine, t.c.expires_at > at)
        stmt = insert.on_conflict_do_update(
            index_elements=[t.c.name],
            set_={
                "holder": node,
                "token": sa.case((renewal, t.c.token), else_=t.c.token + 1),
                "expires_at": until,
                "acquired_at": sa.case((renewal, t.c.acquired_at), else_=at),
                "renewed_at": at,
            },
            where=sa.or_(sa.and_(t.c.holder == node, t.c.token == mine), t.c.expires_at <= at),
        ).returning(t.c.token, t.c.expires_at)
        async with self.db.write() as conn:
            row = (await conn.execute(stmt)).first()
        return None if row is None else Claim(int(row.token), row.expires_at)

    async def release(self, name: str, node: str, token: int) -> bool:
        """End ``node``'s lease now (a clean stop), so another node takes over without waiting."""
        t = cluster_leases
        at = self._now()
        async with self.db.write() as conn:
            result = await conn.execute(
                t.update()
                .where(t.c.name == name, t.c.holder == node, t.c.token == token, t.c.expires_at > at)
                .values(expires_at=at)
            )
        return bool(result.rowcount)

    async def list(self) -> list[LeaseRow]:
        t = cluster_leases
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(t).order_by(t.c.name).limit(LIST_LIMIT))).all()
        return [LeaseRow(r.name, r.holder, int(r.token), r.expires_at, r.acquired_at, r.renewed_at)
                for r in rows]

    async def db_now(self) -> datetime:
        """The database's clock (this process's on SQLite)."""
        if self.db.sqlite:
            return now()
        async with self.db.read() as conn:
            value = (await conn.execute(sa.select(self._now()))).scalar_one()
        assert isinstance(value, datetime)
        return value
