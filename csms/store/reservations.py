"""Reservations (schema ``reservations``) and the link of a transaction to the one it consumed."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csms.reservations.rules import OPEN, Reservation, ReservationRequest, Status
from csms.store import schema as t
from csms.store.engine import Database

_OPEN = [s.value for s in OPEN]


def _reservation(m: sa.RowMapping) -> Reservation:
    return Reservation(
        id=m["id"], station_id=m["station_id"], evse_id=m["evse_id"], id_tag=m["id_tag"],
        expires_at=m["expires_at"], status=Status(m["status"]), created_at=m["created_at"],
        connector_type=m["connector_type"], station_answer=m["station_answer"],
        cancel_answer=m["cancel_answer"], transaction_id=m["transaction_id"], ended_at=m["ended_at"],
    )


def _changes(r: Reservation) -> dict[str, Any]:
    return {"status": r.status.value, "station_answer": r.station_answer, "cancel_answer": r.cancel_answer,
            "transaction_id": r.transaction_id, "ended_at": r.ended_at}


class SqlReservations:
    """The reservation table; every write commits before it returns."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, req: ReservationRequest, now: datetime) -> Reservation:
        """A new ``pending`` reservation; its id is the reservationId sent to the station."""
        async with self._db.write() as conn:
            result = await conn.execute(t.reservations.insert().values(
                station_id=req.station_id, evse_id=req.evse_id, connector_type=req.connector_type,
                id_tag=req.id_tag, expires_at=req.expires_at, status=Status.PENDING.value, created_at=now,
            ))
            assert result.inserted_primary_key is not None
            rid = int(result.inserted_primary_key[0])
        return Reservation(rid, req.station_id, req.evse_id, req.id_tag, req.expires_at, Status.PENDING, now,
                           req.connector_type)

    async def save(self, r: Reservation, *, was: Iterable[Status]) -> bool:
        """Store ``r``'s status, answers, transaction and end if the stored status is one of ``was``
        (an update that lost a race with another changes nothing). Whether it was stored.

        A ``used`` reservation also marks its transaction with the reservation's id.
        """
        c = t.reservations.c
        q = t.reservations.update().where(c.id == r.id, c.status.in_([s.value for s in was])).values(
            **_changes(r))
        async with self._db.write() as conn:
            done = (await conn.execute(q)).rowcount > 0
            if done and r.status is Status.USED and r.transaction_id is not None:
                tx = t.transactions.c
                await conn.execute(t.transactions.update().where(
                    tx.station_id == r.station_id, tx.tx_id == r.transaction_id
                ).values(reservation_id=r.id))
        return done

    async def get(self, reservation_id: int) -> Reservation | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(t.reservations).where(t.reservations.c.id == reservation_id)
            )).first()
        return _reservation(row._mapping) if row is not None else None

    async def list_reservations(
        self, *, station_id: str | None = None, open: bool | None = None, limit: int = 100,
        before_id: int | None = None,
    ) -> list[Reservation]:
        """Newest first; ``open`` True: pending and active only, False: ended only; ``before_id``
        pages on (ids below it)."""
        c = t.reservations.c
        q = sa.select(t.reservations).order_by(c.id.desc()).limit(limit)
        if station_id is not None:
            q = q.where(c.station_id == station_id)
        if open is True:
            q = q.where(c.status.in_(_OPEN))
        elif open is False:
            q = q.where(c.status.not_in(_OPEN))
        if before_id is not None:
            q = q.where(c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_reservation(r._mapping) for r in rows]

    async def due(self, now: datetime, limit: int = 1000) -> list[Reservation]:
        """Open reservations whose ``expires_at`` has come, soonest first."""
        c = t.reservations.c
        q = (sa.select(t.reservations).where(c.status.in_(_OPEN), c.expires_at <= now)
             .order_by(c.expires_at, c.id).limit(limit))
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_reservation(r._mapping) for r in rows]
