"""Desired configuration sets and the stations' answers to them (``csms.desired_config.rules``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from csms.desired_config.rules import DesiredSet, KeyResult, ResultStatus, parse_set
from csms.store import schema as t
from csms.store.engine import Database

_DETAIL_MAX = 255


def _set(row: sa.Row[Any]) -> DesiredSet:
    parsed = parse_set(row.group_name, json.loads(row.body))
    return DesiredSet(parsed.group, int(row.priority), parsed.keys, parsed.variables, row.updated_at)


class SqlDesiredConfig:
    """The ``desired_config_sets`` and ``desired_config_results`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_set(self, desired: DesiredSet) -> bool:
        """Create or replace the group's set (its ``updated_at`` is the time kept); True when created."""
        assert desired.updated_at is not None
        c = t.desired_config_sets.c
        values = {"priority": desired.priority, "body": json.dumps(desired.body()),
                  "updated_at": desired.updated_at}
        async with self._db.write() as conn:
            res = await conn.execute(
                t.desired_config_sets.update().where(c.group_name == desired.group).values(**values)
            )
            if res.rowcount:
                return False
            await conn.execute(t.desired_config_sets.insert().values(group_name=desired.group, **values))
        return True

    async def delete_set(self, group: str) -> bool:
        c = t.desired_config_sets.c
        async with self._db.write() as conn:
            res = await conn.execute(t.desired_config_sets.delete().where(c.group_name == group))
        return bool(res.rowcount)

    async def all_sets(self) -> list[DesiredSet]:
        q = sa.select(t.desired_config_sets).order_by(t.desired_config_sets.c.group_name)
        async with self._db.read() as conn:
            return [_set(r) for r in (await conn.execute(q)).all()]

    async def memberships(self, station_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """The groups of each of ``station_ids`` (every id is a key), from the sites store's table."""
        ids = list(dict.fromkeys(station_ids))
        g = t.station_groups.c
        found: dict[str, list[str]] = {sid: [] for sid in ids}
        async with self._db.read() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(g.station_id, g.group_name).where(g.station_id.in_(ids[i:i + 500]))
                for station_id, group in (await conn.execute(q)).all():
                    found[station_id].append(group)
        return {sid: tuple(sorted(groups)) for sid, groups in found.items()}

    async def save_results(self, station_id: str, results: Sequence[KeyResult]) -> None:
        """Keep ``results`` as the station's last answers for their keys."""
        if not results:
            return
        c = t.desired_config_results.c
        keys = [r.key for r in results]
        async with self._db.write() as conn:
            for i in range(0, len(keys), 500):
                await conn.execute(t.desired_config_results.delete().where(
                    c.station_id == station_id, c.key.in_(keys[i:i + 500])))
            await conn.execute(t.desired_config_results.insert(), [{
                "station_id": station_id, "key": r.key, "value": r.value, "status": r.status.value,
                "detail": None if r.detail is None else r.detail[:_DETAIL_MAX], "at": r.at,
            } for r in results])

    async def forget_results(self, station_id: str, keys: Sequence[str]) -> None:
        """Drop the station's answers for ``keys`` (no longer desired)."""
        c = t.desired_config_results.c
        async with self._db.write() as conn:
            for i in range(0, len(keys), 500):
                await conn.execute(t.desired_config_results.delete().where(
                    c.station_id == station_id, c.key.in_(list(keys[i:i + 500]))))

    async def results(self, station_ids: Iterable[str]) -> dict[str, dict[str, KeyResult]]:
        """The kept answers of ``station_ids``, by station and key."""
        ids = list(dict.fromkeys(station_ids))
        c = t.desired_config_results.c
        out: dict[str, dict[str, KeyResult]] = {sid: {} for sid in ids}
        async with self._db.read() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(t.desired_config_results).where(c.station_id.in_(ids[i:i + 500]))
                for r in (await conn.execute(q)).all():
                    out[r.station_id][r.key] = KeyResult(
                        r.key, r.value, ResultStatus.of(r.status), r.at, r.detail)
        return out
