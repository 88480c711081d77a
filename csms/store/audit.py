"""The audit log table (``csms.core.audit.AuditLog``): append one entry, page newest first."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from csms.core.audit import AuditEntry
from csms.store import schema as t
from csms.store.engine import Database

_MAX = (128, 128, 255)  # actor, action, target column sizes


class SqlAudit:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_audit(self, entry: AuditEntry) -> int:
        """Commit ``entry`` (over-long names are cut to their column); returns its id."""
        names = (entry.actor, entry.action, entry.target)
        actor, action, target = (v[:n] for v, n in zip(names, _MAX, strict=True))
        async with self._db.write() as conn:
            res = await conn.execute(t.audit.insert().values(
                at=entry.at, actor=actor, action=action, target=target, digest=entry.digest,
                result=entry.result[:64],
            ))
            pk = res.inserted_primary_key
        return int(pk[0]) if pk else 0

    async def list_audit(self, *, limit: int, before_id: int | None = None) -> Sequence[AuditEntry]:
        """Up to ``limit`` entries, newest first, with ids below ``before_id`` when given."""
        a = t.audit.c
        q = sa.select(t.audit).order_by(a.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(a.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [
            AuditEntry(r.at, r.actor, r.action, r.target, r.digest, r.result, id=r.id) for r in rows
        ]
