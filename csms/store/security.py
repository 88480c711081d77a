"""Security state: station credentials (served from memory), password rotations, certificates the
CSMS's CA issued, and the security events stations reported."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csms.security.records import IssuedCertificate, StationCredentials
from csms.store import schema as t
from csms.store.credentials import CredentialsCache
from csms.store.engine import Database, now

_SQL_ALL_CREDENTIALS = (
    "SELECT s.station_id, s.security_profile, s.password_hash, s.serial_number, r.pending_hash, r.base_hash"
    " FROM stations s LEFT OUTER JOIN password_rotations r ON r.station_id = s.station_id"
)


def _credentials_row(row: Sequence[Any], known: StationCredentials | None) -> StationCredentials:
    """A row of ``_SQL_ALL_CREDENTIALS``; ``known`` itself when nothing changed.

    A pending rotation is stale once the password it was to replace changed.
    """
    station_id, profile, password, serial, pending, base = row
    pending = pending if base == password else None
    if (
        known is not None and known.security_profile == profile and known.password_hash == password
        and known.pending_password_hash == pending and known.serial_number == serial
    ):
        return known
    return StationCredentials(station_id, profile, password, pending, serial)


class SqlSecurity:
    """``csms.security.records.SecurityStore`` and the security-event log of ``Store``.

    ``credentials`` is shared with the station tables, whose writes change credentials too.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        self.credentials = CredentialsCache(self._load_all_credentials, self._load_credentials)
        self._q_all_credentials = db.direct_sql.sql(_SQL_ALL_CREDENTIALS)

    # --- credentials --------------------------------------------------------------------
    async def get_credentials(self, station_id: str) -> StationCredentials | None:
        """From memory (``csms.store.credentials``): the handshake of every reconnection asks."""
        return await self.credentials.get(station_id)

    def _credentials_query(self) -> sa.Select[Any]:
        st, rot = t.stations.c, t.password_rotations.c
        return sa.select(
            st.station_id, st.security_profile, st.password_hash, st.serial_number, rot.pending_hash,
            rot.base_hash,
        ).select_from(t.stations.outerjoin(t.password_rotations, rot.station_id == st.station_id))

    async def _load_credentials(self, station_id: str) -> StationCredentials | None:
        q = self._credentials_query().where(t.stations.c.station_id == station_id)
        async with self._db.read() as conn:
            row = (await conn.execute(q)).first()
        return _credentials_row(tuple(row), None) if row is not None else None

    async def _load_all_credentials(
        self, known: Mapping[str, StationCredentials]
    ) -> dict[str, StationCredentials]:
        """Every station, off the event loop on SQLite (~30 ms for 20k); unchanged entries are kept
        (a reload then leaves no long-lived garbage for the collector)."""
        query = self._q_all_credentials

        def work(cur: Any) -> dict[str, StationCredentials]:
            cur.execute(query)
            return {row[0]: _credentials_row(row, known.get(row[0])) for row in cur.fetchall()}

        return await self._db.direct_sql.read(work)

    async def set_pending_password(self, station_id: str, password_hash: str) -> None:
        rot = t.password_rotations
        try:
            async with self._db.write() as conn:
                base = (await conn.execute(
                    sa.select(t.stations.c.password_hash).where(t.stations.c.station_id == station_id)
                )).scalar()
                await conn.execute(rot.delete().where(rot.c.station_id == station_id))
                await conn.execute(rot.insert().values(
                    station_id=station_id, pending_hash=password_hash, base_hash=base, requested_at=now()
                ))
        finally:
            self.credentials.forget(station_id)

    async def finish_password_rotation(
        self, station_id: str, *, accepted: bool, pending_hash: str | None = None
    ) -> None:
        """Accepted: the pending hash becomes the password; either way the pending one is dropped.

        With ``pending_hash``, nothing happens unless that is still the pending one.
        """
        rot = t.password_rotations
        try:
            async with self._db.write() as conn:
                pending = (await conn.execute(
                    sa.select(rot.c.pending_hash).where(rot.c.station_id == station_id)
                )).scalar()
                if pending_hash is not None and pending != pending_hash:
                    return
                if accepted and isinstance(pending, str):
                    await conn.execute(t.stations.update().where(
                        t.stations.c.station_id == station_id
                    ).values(password_hash=pending))
                await conn.execute(rot.delete().where(rot.c.station_id == station_id))
        finally:
            self.credentials.forget(station_id)

    # --- certificates -------------------------------------------------------------------
    async def save_certificate(self, cert: IssuedCertificate) -> None:
        async with self._db.write() as conn:
            await conn.execute(t.certificates.insert().values(
                serial=cert.serial, station_id=cert.station_id, subject=cert.subject,
                not_before=cert.not_before, not_after=cert.not_after, pem=cert.pem,
                status=cert.status, issued_at=now(),
            ))

    async def set_certificate_status(self, serial: str, status: str) -> None:
        async with self._db.write() as conn:
            await conn.execute(
                t.certificates.update().where(t.certificates.c.serial == serial).values(status=status)
            )

    async def list_certificates(self, station_id: str | None = None) -> list[IssuedCertificate]:
        c = t.certificates.c
        q = sa.select(t.certificates).order_by(c.issued_at.desc()).limit(500)
        if station_id is not None:
            q = q.where(c.station_id == station_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [
            IssuedCertificate(m["station_id"], m["serial"], m["subject"], m["not_before"],
                              m["not_after"], m["pem"], m["status"])
            for m in (r._mapping for r in rows)
        ]

    # --- security events ----------------------------------------------------------------
    async def save_security_event(
        self, station_id: str, kind: str, ts: datetime, tech_info: str | None
    ) -> None:
        async with self._db.write() as conn:
            await conn.execute(t.security_events.insert().values(
                station_id=station_id, kind=kind, ts=ts, tech_info=tech_info, received_at=now()
            ))

    async def list_security_events(self, station_id: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(t.security_events).order_by(t.security_events.c.pk.desc()).limit(500)
        if station_id is not None:
            q = q.where(t.security_events.c.station_id == station_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [dict(r._mapping) for r in rows]
