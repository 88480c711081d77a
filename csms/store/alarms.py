"""Alarms and their history: every raise, acknowledgement and clear, with its time and actor."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from csms.core.alarms import Alarm, AlarmKey, AlarmTransition, Kind, Severity, State
from csms.store import schema as t
from csms.store.engine import Database

SYSTEM = "csms"
"""The actor of the CSMS's own raises and clears."""


def _alarm(m: sa.RowMapping) -> Alarm:
    return Alarm(
        id=m["id"], charger_id=m["charger_id"], kind=Kind(m["kind"]), severity=Severity(m["severity"]),
        raised_at=m["raised_at"], detail=m["detail"], subject=m["subject"], cleared_at=m["cleared_at"],
        acknowledged_at=m["acknowledged_at"], acknowledged_by=m["acknowledged_by"],
    )


async def _log(conn: AsyncConnection, alarm_id: int, action: State, at: datetime, actor: str) -> None:
    await conn.execute(t.alarm_history.insert().values(alarm_id=alarm_id, action=action.value, at=at,
                                                       actor=actor))


class SqlAlarms:
    """The alarm tables (schema ``alarms``, ``alarm_history``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _one(self, conn: AsyncConnection, alarm_id: int) -> Alarm | None:
        row = (await conn.execute(sa.select(t.alarms).where(t.alarms.c.id == alarm_id))).first()
        return _alarm(row._mapping) if row is not None else None

    async def raise_alarm(
        self, key: AlarmKey, severity: Severity, detail: str, at: datetime, actor: str = SYSTEM
    ) -> Alarm:
        """Insert a new active alarm and its ``raised`` step."""
        async with self._db.write() as conn:
            result = await conn.execute(t.alarms.insert().values(
                charger_id=key.charger_id, kind=key.kind.value, subject=key.subject,
                severity=severity.value, detail=detail, raised_at=at,
            ))
            assert result.inserted_primary_key is not None
            alarm_id = int(result.inserted_primary_key[0])
            await _log(conn, alarm_id, State.RAISED, at, actor)
        return Alarm(id=alarm_id, charger_id=key.charger_id, kind=key.kind, severity=severity,
                     raised_at=at, detail=detail, subject=key.subject)

    async def clear_alarm(self, alarm_id: int, at: datetime, actor: str = SYSTEM) -> Alarm | None:
        """Clear an active alarm; the alarm as it is now (None for an unknown id)."""
        c = t.alarms.c
        async with self._db.write() as conn:
            done = await conn.execute(
                t.alarms.update().where(c.id == alarm_id, c.cleared_at.is_(None)).values(cleared_at=at)
            )
            if done.rowcount:
                await _log(conn, alarm_id, State.CLEARED, at, actor)
            return await self._one(conn, alarm_id)

    async def save_acknowledged(self, alarm: Alarm) -> Alarm | None:
        """Store ``alarm``'s acknowledgement (and clear, for kinds that acknowledgement ends) unless it
        was acknowledged already; the alarm as stored (None for an unknown id)."""
        c = t.alarms.c
        at, actor = alarm.acknowledged_at, alarm.acknowledged_by or SYSTEM
        assert at is not None
        async with self._db.write() as conn:
            done = await conn.execute(
                t.alarms.update().where(c.id == alarm.id, c.acknowledged_at.is_(None))
                .values(acknowledged_at=at, acknowledged_by=actor)
            )
            if done.rowcount:
                await _log(conn, alarm.id, State.ACKNOWLEDGED, at, actor)
                if alarm.cleared_at is not None:
                    cleared = await conn.execute(
                        t.alarms.update().where(c.id == alarm.id, c.cleared_at.is_(None))
                        .values(cleared_at=alarm.cleared_at)
                    )
                    if cleared.rowcount:
                        await _log(conn, alarm.id, State.CLEARED, alarm.cleared_at, actor)
            return await self._one(conn, alarm.id)

    async def get_alarm(self, alarm_id: int) -> Alarm | None:
        async with self._db.read() as conn:
            return await self._one(conn, alarm_id)

    async def list_alarms(
        self, *, active: bool, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Alarm]:
        """Newest first; ``before_id`` pages on (ids below it)."""
        c = t.alarms.c
        q = sa.select(t.alarms).order_by(c.id.desc()).limit(limit)
        if active:
            q = q.where(c.cleared_at.is_(None))
        if charger_id is not None:
            q = q.where(c.charger_id == charger_id)
        if before_id is not None:
            q = q.where(c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_alarm(r._mapping) for r in rows]

    async def active_alarms(self) -> list[Alarm]:
        """Every active alarm, oldest first (reloaded at start)."""
        q = sa.select(t.alarms).where(t.alarms.c.cleared_at.is_(None)).order_by(t.alarms.c.id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_alarm(r._mapping) for r in rows]

    async def stations_seen(self) -> dict[str, datetime | None]:
        """Every registered station: when a core node last wrote that it heard from it."""
        c = t.stations.c
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(c.station_id, c.last_seen_at))).all()
        return {r.station_id: r.last_seen_at for r in rows}

    async def alarm_history(self, alarm_id: int) -> list[AlarmTransition]:
        h = t.alarm_history.c
        q = sa.select(t.alarm_history).where(h.alarm_id == alarm_id).order_by(h.pk)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [
            AlarmTransition(m["alarm_id"], State(m["action"]), m["at"], m["actor"])
            for m in (r._mapping for r in rows)
        ]
