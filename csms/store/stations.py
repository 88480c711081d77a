"""Stations and what is known of them: registration, boots, last seen, connector states, reported
device variables; and the id tags the operator manages.

Connector states and variables are written behind in batches (fixed SQL, one statement each);
a write for a station deleted meanwhile adds nothing. Writes that change a station's
credentials tell the credentials cache once committed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csms.core.model import AuthStatus, ConnectorState, IdTag, Station, StationInfo
from csms.store import schema as t
from csms.store.credentials import CredentialsCache
from csms.store.engine import Database, now
from csms.store.removal import remove_station_records
from ocppj.versions import OcppVersion

_SQL_CONNECTOR = (  # only for a registered station (see _SQL_VARIABLE)
    "INSERT INTO connectors (station_id, evse_id, connector_id, status, error_code, updated_at)"
    " SELECT ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM stations WHERE station_id = ?)"
    " ON CONFLICT (station_id, evse_id, connector_id) DO UPDATE SET"
    " status = excluded.status, error_code = excluded.error_code, updated_at = excluded.updated_at"
)

_SQL_VARIABLE = (  # only for a registered station: a write racing its deletion adds nothing
    "INSERT INTO device_variables (station_id, name, value, updated_at)"
    " SELECT ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM stations WHERE station_id = ?)"
    " ON CONFLICT (station_id, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at"
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


class SqlStations:
    """The station and id-tag part of ``csms.core.ports.Store``."""

    def __init__(self, db: Database, credentials: CredentialsCache) -> None:
        self._db = db
        self._creds = credentials
        sql = db.direct_sql.sql
        self._q_connector, self._q_variable = sql(_SQL_CONNECTOR), sql(_SQL_VARIABLE)

    # --- stations -----------------------------------------------------------------------
    async def get_station(self, station_id: str) -> Station | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(t.stations).where(t.stations.c.station_id == station_id)
            )).first()
        return _station(row) if row else None

    async def list_stations(self) -> list[Station]:
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(t.stations).order_by(t.stations.c.station_id))).all()
        return [_station(r) for r in rows]

    async def station_profiles(self) -> dict[str, int]:
        """Every registered station's id and security profile: the list without the details to map."""
        c = t.stations.c
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(c.station_id, c.security_profile))).all()
        return {sid: profile for sid, profile in rows}

    async def upsert_station(
        self, station_id: str, *, security_profile: int | None = None,
        password_hash: str | None = None,
    ) -> Station:
        values: dict[str, Any] = {}
        if security_profile is not None:
            values["security_profile"] = security_profile
        if password_hash is not None:
            values["password_hash"] = password_hash
        try:
            async with self._db.write() as conn:
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
                        t.stations.insert().values(station_id=station_id, registered_at=now(), **values)
                    )
                row = (await conn.execute(
                    sa.select(t.stations).where(t.stations.c.station_id == station_id)
                )).one()
        finally:
            self._creds.forget(station_id)
        return _station(row)

    async def delete_station(self, station_id: str) -> bool:
        """Remove the station and, in the same transaction, what the features keep about it
        (``csms.store.removal``); False when it was not registered (its leftovers, if any, still go)."""
        return await self.remove_station(station_id) is not None

    async def remove_station(self, station_id: str) -> list[int] | None:
        """``delete_station``, returning the ids of the station's removed uploads (their files are the
        caller's to delete); None when the station was not registered."""
        try:
            async with self._db.write() as conn:
                res = await conn.execute(t.stations.delete().where(t.stations.c.station_id == station_id))
                await conn.execute(t.connectors.delete().where(t.connectors.c.station_id == station_id))
                await conn.execute(
                    t.device_variables.delete().where(t.device_variables.c.station_id == station_id)
                )
                for table in (t.station_sites, t.station_groups, t.connector_specs):
                    await conn.execute(table.delete().where(table.c.station_id == station_id))
                upload_ids = await remove_station_records(conn, station_id)
        finally:
            self._creds.forget(station_id)
        return upload_ids if res.rowcount else None

    async def get_password_hash(self, station_id: str) -> str | None:
        async with self._db.read() as conn:
            value = (await conn.execute(
                sa.select(t.stations.c.password_hash).where(t.stations.c.station_id == station_id)
            )).scalar()
        return value if isinstance(value, str) else None

    async def record_boot(
        self, station_id: str, protocol: OcppVersion, info: StationInfo, ts: datetime
    ) -> None:
        try:
            async with self._db.write() as conn:
                await conn.execute(
                    t.stations.update().where(t.stations.c.station_id == station_id).values(
                        protocol=protocol.value, vendor=info.vendor, model=info.model,
                        serial_number=info.serial_number, firmware_version=info.firmware_version,
                        last_boot_at=ts, last_seen_at=ts,
                    )
                )
        except BaseException:
            self._creds.forget(station_id)
            raise
        self._creds.patch(station_id, serial_number=info.serial_number)

    async def save_seen(self, seen: Mapping[str, datetime]) -> None:
        if not seen:
            return
        stmt = t.stations.update().where(t.stations.c.station_id == sa.bindparam("sid")).values(
            last_seen_at=sa.bindparam("ts")
        )
        async with self._db.write() as conn:
            await conn.execute(stmt, [{"sid": k, "ts": v} for k, v in seen.items()])

    # --- connectors and device variables ------------------------------------------------
    async def save_connectors(self, states: Sequence[tuple[str, ConnectorState]]) -> None:
        """One upsert statement for all of them."""
        if not states:
            return
        ts = self._db.direct_sql.ts
        rows = [
            (sid, c.evse_id, c.connector_id, c.status, c.error_code, ts(c.updated_at), sid)
            for sid, c in states
        ]
        sql = self._q_connector

        def work(cur: Any) -> None:
            cur.executemany(sql, rows)

        await self._db.direct(work)

    async def load_connectors(self) -> dict[str, list[ConnectorState]]:
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(t.connectors))).all()
        out: dict[str, list[ConnectorState]] = {}
        for r in rows:
            m = r._mapping
            out.setdefault(m["station_id"], []).append(
                ConnectorState(m["evse_id"], m["connector_id"], m["status"], m["error_code"], m["updated_at"])
            )
        return out

    async def save_variables(self, rows: Sequence[tuple[str, str, str]]) -> None:
        """Upsert reported device variables, (station_id, name, value) each, in one statement."""
        if not rows:
            return
        received = self._db.direct_sql.ts(now())
        params = [(station_id, name, value, received, station_id) for station_id, name, value in rows]
        sql = self._q_variable

        def work(cur: Any) -> None:
            cur.executemany(sql, params)

        await self._db.direct(work)

    async def load_variables(self) -> dict[str, dict[str, str]]:
        c = t.device_variables.c
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(c.station_id, c.name, c.value))).all()
        out: dict[str, dict[str, str]] = {}
        for station_id, name, value in rows:
            out.setdefault(station_id, {})[name] = value
        return out

    # --- id tags ------------------------------------------------------------------------
    async def get_id_tag(self, id_tag: str) -> IdTag | None:
        async with self._db.read() as conn:
            row = (await conn.execute(sa.select(t.id_tags).where(t.id_tags.c.id_tag == id_tag))).first()
        if row is None:
            return None
        m = row._mapping
        return IdTag(m["id_tag"], AuthStatus(m["status"]), m["expiry"], m["parent"])

    async def put_id_tag(self, tag: IdTag) -> bool:
        """Insert or replace; True when it was new."""
        async with self._db.write() as conn:
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
        async with self._db.write() as conn:
            res = await conn.execute(t.id_tags.delete().where(t.id_tags.c.id_tag == id_tag))
        return bool(res.rowcount)

    async def list_id_tags(self) -> list[IdTag]:
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(t.id_tags).order_by(t.id_tags.c.id_tag))).all()
        return [
            IdTag(m["id_tag"], AuthStatus(m["status"]), m["expiry"], m["parent"])
            for m in (r._mapping for r in rows)
        ]
