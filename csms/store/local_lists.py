"""Local authorization lists (``csms.local_lists``): id tags with their tag group, the policies,
and per station the list version and entries it accepted last."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from csms.core.model import AuthStatus, IdTag
from csms.local_lists.rules import Entry, Known, Message, Policy, UpdateType
from csms.store import schema as t
from csms.store.engine import Database, now


@dataclass(frozen=True, slots=True)
class StationListState:
    """One station's row: the version it accepted last, whether that is current, and why not."""

    station_id: str
    version: int
    in_sync: bool
    entries: int
    digest: str | None  # of the entries, recorded when the station was made current
    update_type: str | None
    synced_at: datetime | None
    attempted_at: datetime | None
    error: str | None


_STATUS = {s.value: s for s in AuthStatus}  # a dict lookup: ten thousand rows read in one go


def _state(row: sa.Row[object]) -> StationListState:
    m = row._mapping
    return StationListState(m["station_id"], m["version"], bool(m["in_sync"]), m["entries"], m["digest"],
                            m["update_type"], m["synced_at"], m["attempted_at"], m["error"])


class SqlLocalLists:
    """The ``tag_group`` of ``id_tags``, ``local_list_policies``, ``local_list_states`` and
    ``local_list_entries``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- id tags with their group --------------------------------------------------------
    async def put_tag(self, tag: IdTag, tag_group: str | None) -> bool:
        """Insert or replace an id tag with its tag group; True when it was new."""
        tags = t.id_tags_grouped
        values = {
            "status": tag.status.value, "expiry": tag.expiry, "parent": tag.parent, "tag_group": tag_group,
        }
        async with self._db.write() as conn:
            res = await conn.execute(tags.update().where(tags.c.id_tag == tag.id_tag).values(**values))
            if res.rowcount:
                return False
            await conn.execute(tags.insert().values(id_tag=tag.id_tag, **values))
        return True

    async def list_tags(
        self, *, tag_group: str | None = None, after: str | None = None, limit: int | None = None,
    ) -> list[tuple[IdTag, str | None]]:
        """Id tags by id with their tag group (only ``tag_group``'s when given), after ``after``."""
        c = t.id_tags_grouped.c
        q = sa.select(t.id_tags_grouped).order_by(c.id_tag)
        if tag_group is not None:
            q = q.where(c.tag_group == tag_group)
        if after is not None:
            q = q.where(c.id_tag > after)
        if limit is not None:
            q = q.limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [(IdTag(r.id_tag, _STATUS[r.status], r.expiry, r.parent), r.tag_group) for r in rows]

    async def tag_group_of(self, id_tag: str) -> str | None:
        """The tag group of ``id_tag`` (None: no such tag, or in no group)."""
        c = t.id_tags_grouped.c
        async with self._db.read() as conn:
            value = (await conn.execute(sa.select(c.tag_group).where(c.id_tag == id_tag))).scalar()
        return value if isinstance(value, str) else None

    # --- policies ------------------------------------------------------------------------
    async def put_policy(self, policy: Policy) -> bool:
        """Create or replace the policy of ``policy.scope``; True when it was created."""
        p = t.local_list_policies
        at = policy.updated_at or now()
        async with self._db.write() as conn:
            res = await conn.execute(
                p.update().where(p.c.scope == policy.scope).values(tag_group=policy.tag_group, updated_at=at)
            )
            if res.rowcount:
                return False
            await conn.execute(
                p.insert().values(scope=policy.scope, tag_group=policy.tag_group, updated_at=at)
            )
        return True

    async def delete_policy(self, scope: str) -> bool:
        p = t.local_list_policies
        async with self._db.write() as conn:
            res = await conn.execute(p.delete().where(p.c.scope == scope))
        return bool(res.rowcount)

    async def policy(self, scope: str) -> Policy | None:
        c = t.local_list_policies.c
        async with self._db.read() as conn:
            r = (await conn.execute(sa.select(t.local_list_policies).where(c.scope == scope))).first()
        return None if r is None else Policy(r.scope, r.tag_group, r.updated_at)

    async def policies(self, *, after: str | None = None, limit: int | None = None) -> list[Policy]:
        """Policies by scope (the default, scope ``""``, first)."""
        c = t.local_list_policies.c
        q = sa.select(t.local_list_policies).order_by(c.scope)
        if after is not None:
            q = q.where(c.scope > after)
        if limit is not None:
            q = q.limit(limit)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [Policy(r.scope, r.tag_group, r.updated_at) for r in rows]

    # --- what each station holds ---------------------------------------------------------
    async def known(self, station_id: str) -> Known | None:
        """The version and entries ``station_id`` accepted last; None before its first update."""
        s, e = t.local_list_states.c, t.local_list_entries.c
        async with self._db.read() as conn:
            state = (await conn.execute(
                sa.select(t.local_list_states).where(s.station_id == station_id)
            )).first()
            if state is None:
                return None
            rows = (await conn.execute(
                sa.select(t.local_list_entries).where(e.station_id == station_id)
            )).all()
        entries = {r.id_tag: Entry(r.id_tag, _STATUS[r.status], r.expiry, r.parent) for r in rows}
        return Known(state.version, entries, bool(state.in_sync))

    async def state(self, station_id: str) -> StationListState | None:
        s = t.local_list_states.c
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(t.local_list_states).where(s.station_id == station_id)
            )).first()
        return None if row is None else _state(row)

    async def states(self, *, after: str | None = None, limit: int = 100) -> list[StationListState]:
        """Stations' list states by station id, after ``after``."""
        s = t.local_list_states.c
        q = sa.select(t.local_list_states).order_by(s.station_id).limit(limit)
        if after is not None:
            q = q.where(s.station_id > after)
        async with self._db.read() as conn:
            return [_state(r) for r in (await conn.execute(q)).all()]

    async def accepted(
        self, station_id: str, message: Message, *, entries: int, in_sync: bool, digest: str | None = None,
    ) -> None:
        """Record that ``station_id`` accepted ``message`` (its list now has ``entries`` entries,
        whose ``digest`` is given with the last message of an update)."""
        e = t.local_list_entries
        at = now()
        changed = [c.id_tag for c in message.changes]
        rows = [
            {"station_id": station_id, "id_tag": c.id_tag, "status": c.entry.status.value,
             "expiry": c.entry.expiry, "parent": c.entry.parent}
            for c in message.changes if c.entry is not None
        ]
        async with self._db.write() as conn:
            if message.update_type is UpdateType.FULL:
                await conn.execute(e.delete().where(e.c.station_id == station_id))
            else:
                for part in _parts(changed, 500):
                    await conn.execute(e.delete().where(e.c.station_id == station_id, e.c.id_tag.in_(part)))
            if rows:
                await conn.execute(e.insert(), rows)
            await self._put_state(conn, station_id, version=message.version, in_sync=in_sync, entries=entries,
                                  digest=digest, update_type=message.update_type.value,
                                  synced_at=at if in_sync else None, attempted_at=at, error=None)

    async def confirmed(self, station_id: str, version: int, digest: str) -> None:
        """The station was found current at ``version``, holding a list of ``digest``."""
        at = now()
        async with self._db.write() as conn:
            await self._put_state(conn, station_id, version=version, in_sync=True, digest=digest,
                                  synced_at=at, attempted_at=at, error=None)

    async def failed(self, station_id: str, error: str) -> None:
        """The station's list is not what it should be, because of ``error``."""
        async with self._db.write() as conn:
            await self._put_state(conn, station_id, in_sync=False, attempted_at=now(), error=error[:2000])

    async def forget(self, station_id: str) -> None:
        """Drop what was recorded of a station's list (the station was removed)."""
        e, s = t.local_list_entries, t.local_list_states
        async with self._db.write() as conn:
            await conn.execute(e.delete().where(e.c.station_id == station_id))
            await conn.execute(s.delete().where(s.c.station_id == station_id))

    @staticmethod
    async def _put_state(conn: AsyncConnection, station_id: str, **values: object) -> None:
        s = t.local_list_states
        res = await conn.execute(s.update().where(s.c.station_id == station_id).values(**values))
        if not res.rowcount:
            row = {"station_id": station_id, "version": 0, "entries": 0, **values}
            await conn.execute(s.insert().values(row))


def _parts(items: Sequence[str], size: int) -> list[Sequence[str]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
