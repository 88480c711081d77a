"""Station events and signed meter values: the ``StationEventStore`` part of the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
import sqlalchemy as sa

from csms.core.station_events import EventQuery, SignedMeterValue, StationEvent
from csms.store import schema as t
from csms.store.engine import Database

_EVENTS = t.station_events
_SIGNED = t.signed_meter_values
_INSERT_EVENTS = _EVENTS.insert().returning(_EVENTS.c.id, sort_by_parameter_order=True)


def _event(m: Mapping[Any, Any]) -> StationEvent:
    data = orjson.loads(m["data"])
    return StationEvent(m["id"], m["station_id"], m["at"], m["station_time"], m["type"], data)


def _signed(m: Mapping[Any, Any]) -> SignedMeterValue:
    return SignedMeterValue(
        m["station_id"], m["tx_id"], m["at"], m["station_time"], m["context"], m["measurand"], m["encoding"],
        m["signing_method"], m["public_key"], m["data"],
    )


class SqlStationEvents:
    """Station events (written in batches, read a page at a time, pruned by age) and signed values."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def save_station_events(self, events: Sequence[StationEvent]) -> list[int]:
        """Insert a batch in one commit; returns the new ids in the batch's order."""
        if not events:
            return []
        rows = [
            {"station_id": e.station_id, "at": e.at, "station_time": e.station_time, "type": e.type,
             "data": orjson.dumps(e.data).decode()}
            for e in events
        ]
        async with self._db.write() as conn:
            result = await conn.execute(_INSERT_EVENTS, rows)
            return [int(row[0]) for row in result.all()]

    async def list_station_events(self, query: EventQuery) -> list[StationEvent]:
        """One station's events, newest (highest id) first, below ``before_id`` when given."""
        c = _EVENTS.c
        q = sa.select(_EVENTS).where(c.station_id == query.station_id)
        if query.type is not None:
            q = q.where(c.type == query.type)
        if query.since is not None:
            q = q.where(c.at >= query.since)
        if query.before_id is not None:
            q = q.where(c.id < query.before_id)
        q = q.order_by(c.id.desc()).limit(query.limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_event(r._mapping) for r in rows]

    async def prune_station_events(self, before: datetime, *, chunk: int = 5000) -> int:
        """Delete the events received before ``before``, ``chunk`` rows per write so transaction
        messages waiting for the (single SQLite) writer are not held up; returns how many."""
        c = _EVENTS.c
        oldest = sa.select(c.id).where(c.at < before).limit(chunk).scalar_subquery()
        deleted = 0
        while True:
            async with self._db.write() as conn:
                result = await conn.execute(_EVENTS.delete().where(c.id.in_(oldest)))
                n = int(result.rowcount or 0)
            deleted += n
            if n < chunk:
                return deleted

    async def save_signed_meter_values(self, values: Sequence[SignedMeterValue]) -> None:
        if not values:
            return
        rows = [
            {"station_id": v.station_id, "tx_id": v.tx_id, "at": v.at, "station_time": v.station_time,
             "context": v.context, "measurand": v.measurand, "encoding": v.encoding,
             "signing_method": v.signing_method, "public_key": v.public_key, "data": v.data}
            for v in values
        ]
        async with self._db.write() as conn:
            await conn.execute(_SIGNED.insert(), rows)

    async def list_signed_meter_values(self, station_id: str, tx_id: str) -> list[SignedMeterValue]:
        """A transaction's signed values in the order they arrived."""
        c = _SIGNED.c
        q = sa.select(_SIGNED).where((c.station_id == station_id) & (c.tx_id == tx_id)).order_by(c.at, c.id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_signed(r._mapping) for r in rows]
