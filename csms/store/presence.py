"""Which core serves each connected station, through which gateway (``csms.cluster.presence``).

One row per connected station. A core writes its row when a session starts (taking it over
from whichever core had it: the newer connection wins) and deletes it when the session ends,
only if the row is still its own. Rows of a node that died without cleaning up are deleted by
whichever core learns of the death first; until then readers ignore rows of offline nodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from csms.store.engine import Database, now
from csms.store.schema import station_presence


@dataclass(frozen=True, slots=True)
class PresenceRow:
    station_id: str
    core: str
    gateway: str
    protocol: str
    since: datetime


def _row(r: sa.Row[tuple[str, str, str, str, datetime]]) -> PresenceRow:
    return PresenceRow(r.station_id, r.core, r.gateway, r.protocol, r.since)


class SqlPresence:
    """The ``station_presence`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, station_id: str, core: str, gateway: str, protocol: str,
    ) -> tuple[datetime, PresenceRow | None]:
        """Make this core the station's: the ``since`` written (the session's mark, for ``release``)
        and the row it replaced (another session's), if any."""
        t = station_presence
        since = now()
        async with self.db.write() as conn:
            query = sa.select(t).where(t.c.station_id == station_id)
            if not self.db.sqlite:
                query = query.with_for_update()
            old = (await conn.execute(query)).first()
            values = {"core": core, "gateway": gateway, "protocol": protocol, "since": since}
            if old is None:
                await conn.execute(t.insert().values(station_id=station_id, **values))
            else:
                await conn.execute(t.update().where(t.c.station_id == station_id).values(**values))
        return since, None if old is None else _row(old)

    async def release(self, station_id: str, core: str, since: datetime | None = None) -> bool:
        """The session ended: delete the row if it is still this core's (and, with ``since``, still
        this session's: a newer session of the station on the same core keeps its row)."""
        t = station_presence
        mine = [t.c.station_id == station_id, t.c.core == core]
        if since is not None:
            mine.append(t.c.since == since)
        async with self.db.write() as conn:
            result = await conn.execute(t.delete().where(*mine))
        return bool(result.rowcount)

    async def stations_of(self, core: str) -> dict[str, datetime]:
        """This core's rows: station id -> the ``since`` of the session that wrote it."""
        t = station_presence
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(t.c.station_id, t.c.since).where(t.c.core == core))).all()
        return {r[0]: r[1] for r in rows}

    async def drop_endpoint(self, endpoint: str) -> int:
        """Delete the rows of a node that is gone (as its core or its gateway)."""
        t = station_presence
        async with self.db.write() as conn:
            gone = sa.or_(t.c.core == endpoint, t.c.gateway == endpoint)
            result = await conn.execute(t.delete().where(gone))
        return int(result.rowcount or 0)

    async def get(self, station_id: str) -> PresenceRow | None:
        t = station_presence
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(t).where(t.c.station_id == station_id))).first()
        return None if row is None else _row(row)

    async def many(self, station_ids: list[str]) -> dict[str, PresenceRow]:
        t = station_presence
        out: dict[str, PresenceRow] = {}
        for i in range(0, len(station_ids), 1000):
            chunk = station_ids[i:i + 1000]
            async with self.db.read() as conn:
                rows = (await conn.execute(sa.select(t).where(t.c.station_id.in_(chunk)))).all()
            out.update((r.station_id, _row(r)) for r in rows)
        return out

    async def counts(self) -> dict[tuple[str, str], int]:
        """Stations per (core, gateway) endpoint pair."""
        t = station_presence
        async with self.db.read() as conn:
            rows = (await conn.execute(
                sa.select(t.c.core, t.c.gateway, sa.func.count()).group_by(t.c.core, t.c.gateway))).all()
        return {(r[0], r[1]): int(r[2]) for r in rows}

    async def drop_node_before(self, node_id: str, endpoint: str) -> int:
        """Delete the rows of ``node_id``'s earlier runs (endpoints other than ``endpoint``)."""
        t = station_presence
        # node_id, a dot and exactly the six characters of a run's token (node ids may hold dots)
        prefix = node_id.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ".______"
        async with self.db.write() as conn:
            result = await conn.execute(t.delete().where(
                sa.or_(t.c.core.like(prefix, escape="\\"), t.c.gateway.like(prefix, escape="\\")),
                t.c.core != endpoint, t.c.gateway != endpoint))
        return int(result.rowcount or 0)

    async def all(self) -> list[PresenceRow]:
        t = station_presence
        async with self.db.read() as conn:
            rows = (await conn.execute(sa.select(t))).all()
        return [_row(r) for r in rows]
