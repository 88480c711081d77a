"""Sites, station groups and connector specs (``csms.core.sites``), and target resolution."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from csms.core.sites import ConnectorFormat, ConnectorSpec, ConnectorStandard, Placement, PowerType, Site
from csms.core.targets import Targets
from csms.store import schema as t
from csms.store.engine import Database, now
from csms.store.removal import remove_site_records


def _site(row: sa.Row[Any]) -> Site:
    m = row._mapping
    hours = json.loads(m["opening_hours"]) if m["opening_hours"] else None
    return Site(
        m["site_id"], m["name"], m["address"], m["city"], m["postal_code"], m["country"],
        m["latitude"], m["longitude"], m["operator"], m["time_zone"], hours, m["created_at"], m["updated_at"],
    )


CHUNK = 5000  # ids per statement (PostgreSQL allows at most 32,767 parameters)


class SqlSites:
    """The ``sites``, ``station_sites``, ``station_groups`` and ``connector_specs`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- sites ---------------------------------------------------------------------------
    async def put_site(self, site: Site) -> bool:
        """Create or replace ``site``; True when it was created."""
        values = {
            "name": site.name, "address": site.address, "city": site.city, "postal_code": site.postal_code,
            "country": site.country, "latitude": site.latitude, "longitude": site.longitude,
            "operator": site.operator, "time_zone": site.time_zone,
            "opening_hours": None if site.opening_hours is None else json.dumps(site.opening_hours),
            "updated_at": now(),
        }
        async with self._db.write() as conn:
            res = await conn.execute(
                t.sites.update().where(t.sites.c.site_id == site.site_id).values(**values)
            )
            if res.rowcount:
                return False
            await conn.execute(t.sites.insert().values(site_id=site.site_id, created_at=values["updated_at"],
                                                       **values))
        return True

    async def get_site(self, site_id: str) -> Site | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(t.sites).where(t.sites.c.site_id == site_id))).first()
        return None if row is None else _site(row)

    async def list_sites(self) -> list[tuple[Site, int]]:
        """Every site, by id, with how many stations it has."""
        counts = (
            sa.select(t.station_sites.c.site_id, sa.func.count().label("n"))
            .group_by(t.station_sites.c.site_id).subquery()
        )
        q = (
            sa.select(t.sites, sa.func.coalesce(counts.c.n, 0).label("station_count"))
            .outerjoin(counts, counts.c.site_id == t.sites.c.site_id).order_by(t.sites.c.site_id)
        )
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [(_site(r), int(r.station_count)) for r in rows]

    async def delete_site(self, site_id: str) -> bool:
        """Remove the site and its tariff assignment; its stations are left without one."""
        async with self._db.write() as conn:
            res = await conn.execute(t.sites.delete().where(t.sites.c.site_id == site_id))
            await conn.execute(t.station_sites.delete().where(t.station_sites.c.site_id == site_id))
            await remove_site_records(conn, site_id)
        return bool(res.rowcount)

    # --- placement -----------------------------------------------------------------------
    async def set_station_site(self, station_id: str, site_id: str | None) -> None:
        async with self._db.write() as conn:
            await conn.execute(t.station_sites.delete().where(t.station_sites.c.station_id == station_id))
            if site_id is not None:
                await conn.execute(t.station_sites.insert().values(station_id=station_id, site_id=site_id))

    async def set_station_groups(self, station_id: str, groups: Iterable[str]) -> None:
        """Replace the station's groups."""
        names = sorted(set(groups))
        async with self._db.write() as conn:
            await conn.execute(t.station_groups.delete().where(t.station_groups.c.station_id == station_id))
            if names:
                await conn.execute(t.station_groups.insert(), [
                    {"group_name": g, "station_id": station_id} for g in names
                ])

    async def placement(self, station_id: str) -> Placement:
        async with self._db.read() as conn:
            site = (await conn.execute(
                sa.select(t.station_sites.c.site_id).where(t.station_sites.c.station_id == station_id)
            )).scalar()
            groups = (await conn.execute(
                sa.select(t.station_groups.c.group_name).where(t.station_groups.c.station_id == station_id)
                .order_by(t.station_groups.c.group_name)
            )).scalars().all()
        return Placement(site, tuple(groups))

    async def placements(self) -> dict[str, Placement]:
        """Every placed station's site and groups (stations with neither are absent)."""
        async with self._db.read() as conn:
            sites = (await conn.execute(sa.select(t.station_sites))).all()
            groups = (await conn.execute(
                sa.select(t.station_groups).order_by(t.station_groups.c.group_name)
            )).all()
        site_of = {r.station_id: r.site_id for r in sites}
        groups_of: dict[str, list[str]] = {}
        for r in groups:
            groups_of.setdefault(r.station_id, []).append(r.group_name)
        return {
            sid: Placement(site_of.get(sid), tuple(groups_of.get(sid, ())))
            for sid in site_of.keys() | groups_of.keys()
        }

    # --- groups --------------------------------------------------------------------------
    async def list_groups(self) -> list[tuple[str, int]]:
        """Every group (a group exists while it has members), with its member count."""
        g = t.station_groups.c
        q = sa.select(g.group_name, sa.func.count()).group_by(g.group_name).order_by(g.group_name)
        async with self._db.read() as conn:
            return [(str(name), int(n)) for name, n in (await conn.execute(q)).all()]

    async def add_to_group(self, group: str, station_ids: Sequence[str]) -> int:
        """Add stations to ``group``; returns how many were not in it yet."""
        async with self._db.write() as conn:
            have = set((await conn.execute(
                sa.select(t.station_groups.c.station_id).where(t.station_groups.c.group_name == group)
            )).scalars())
            new = [s for s in dict.fromkeys(station_ids) if s not in have]
            if new:
                await conn.execute(
                    t.station_groups.insert(), [{"group_name": group, "station_id": s} for s in new]
                )
        return len(new)

    async def remove_from_group(self, group: str, station_ids: Sequence[str]) -> int:
        g = t.station_groups.c
        ids, removed = list(station_ids), 0
        async with self._db.write() as conn:
            for i in range(0, len(ids), CHUNK):
                res = await conn.execute(
                    t.station_groups.delete().where(g.group_name == group, g.station_id.in_(ids[i:i + CHUNK]))
                )
                removed += int(res.rowcount)
        return removed

    async def set_group_members(self, group: str, station_ids: Sequence[str]) -> None:
        """Replace ``group``'s members (an empty list removes the group)."""
        async with self._db.write() as conn:
            await conn.execute(t.station_groups.delete().where(t.station_groups.c.group_name == group))
            if station_ids:
                await conn.execute(t.station_groups.insert(), [
                    {"group_name": group, "station_id": s} for s in dict.fromkeys(station_ids)
                ])

    async def group_members(self, group: str) -> list[str]:
        g = t.station_groups.c
        q = sa.select(g.station_id).where(g.group_name == group).order_by(g.station_id)
        async with self._db.read() as conn:
            return [str(x) for x in (await conn.execute(q)).scalars()]

    async def site_stations(self, site_id: str) -> list[str]:
        p = t.station_sites.c
        q = sa.select(p.station_id).where(p.site_id == site_id).order_by(p.station_id)
        async with self._db.read() as conn:
            return [str(x) for x in (await conn.execute(q)).scalars()]

    async def delete_group(self, group: str) -> int:
        async with self._db.write() as conn:
            res = await conn.execute(t.station_groups.delete().where(t.station_groups.c.group_name == group))
        return int(res.rowcount)

    # --- connector specs -----------------------------------------------------------------
    async def set_connector_specs(self, station_id: str, specs: Sequence[ConnectorSpec]) -> None:
        """Replace the station's connector specs."""
        async with self._db.write() as conn:
            await conn.execute(t.connector_specs.delete().where(t.connector_specs.c.station_id == station_id))
            if specs:
                await conn.execute(t.connector_specs.insert(), [{
                    "station_id": station_id, "evse_id": s.evse_id, "connector_id": s.connector_id,
                    "standard": s.standard.value, "format": s.format.value, "power_type": s.power_type.value,
                    "max_power_w": s.max_power_w,
                } for s in specs])

    async def connector_specs(self, station_id: str) -> list[ConnectorSpec]:
        c = t.connector_specs.c
        q = sa.select(t.connector_specs).where(c.station_id == station_id).order_by(c.evse_id, c.connector_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [
            ConnectorSpec(r.evse_id, r.connector_id, ConnectorStandard(r.standard), r.max_power_w,
                          ConnectorFormat(r.format), PowerType(r.power_type))
            for r in rows
        ]

    # --- targets -------------------------------------------------------------------------
    async def resolve(self, targets: Targets) -> list[str]:
        """The registered stations ``targets`` name, sorted (``csms.core.targets.TargetResolver``)."""
        s = t.stations.c
        if targets.stations:  # in chunks: a database bounds the parameters of one statement
            found: list[str] = []
            ids = list(targets.stations)
            async with self._db.read() as conn:
                for i in range(0, len(ids), CHUNK):
                    q = sa.select(s.station_id).where(s.station_id.in_(ids[i:i + CHUNK]))
                    found.extend(str(x) for x in (await conn.execute(q)).scalars())
            return sorted(found)
        if targets.group is not None:
            g = t.station_groups.c
            q = sa.select(s.station_id).join(t.station_groups, g.station_id == s.station_id).where(
                g.group_name == targets.group
            )
        else:
            p = t.station_sites.c
            q = sa.select(s.station_id).join(t.station_sites, p.station_id == s.station_id).where(
                p.site_id == targets.site
            )
        async with self._db.read() as conn:
            return sorted(str(x) for x in (await conn.execute(q)).scalars())
