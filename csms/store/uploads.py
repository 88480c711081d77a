"""Diagnostics and log uploads: each request, its status, its file's receipt and its timeline."""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from csms.store import schema as t
from csms.store.engine import Database
from csms.uploads.rules import REQUESTED, Kind, LogType, Receipt, Step, Upload, UploadParams, accepts_file


class Claim(enum.Enum):
    """Why a token did not let an upload in."""

    UNKNOWN = "unknown"  # no such token, or it expired
    TAKEN = "taken"  # the upload arrived already, or one is streaming in


def _upload(m: sa.RowMapping) -> Upload:
    return Upload(
        id=m["id"], charger_id=m["charger_id"],
        params=UploadParams(
            kind=Kind(m["kind"]), log_type=LogType(m["log_type"]) if m["log_type"] else None,
            oldest=m["oldest"], latest=m["latest"], retries=m["retries"],
            retry_interval_s=m["retry_interval_s"],
        ),
        status=m["status"], receipt=Receipt(m["receipt"]), created_at=m["created_at"],
        updated_at=m["updated_at"], expires_at=m["expires_at"], filename=m["filename"],
        size_bytes=m["size_bytes"], sha256=m["sha256"], received_at=m["received_at"], detail=m["detail"],
    )


async def _step(conn: AsyncConnection, upload_id: int, at: datetime, event: str, detail: str | None) -> None:
    await conn.execute(t.upload_steps.insert().values(upload_id=upload_id, at=at, event=event, detail=detail))


class SqlUploads:
    """The upload tables (schema ``uploads``, ``upload_steps``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def _one(self, conn: AsyncConnection, where: sa.ColumnElement[bool]) -> Upload | None:
        row = (await conn.execute(sa.select(t.uploads).where(where))).first()
        return _upload(row._mapping) if row is not None else None

    async def create(
        self, charger_id: str, params: UploadParams, *, status: str, token_hash: str, expires_at: datetime,
        at: datetime,
    ) -> Upload:
        """A new upload waiting for its file, with its first step."""
        async with self._db.write() as conn:
            result = await conn.execute(t.uploads.insert().values(
                charger_id=charger_id, kind=params.kind.value,
                log_type=params.log_type.value if params.log_type else None, oldest=params.oldest,
                latest=params.latest, retries=params.retries, retry_interval_s=params.retry_interval_s,
                status=status, receipt=Receipt.WAITING.value, token_hash=token_hash, expires_at=expires_at,
                created_at=at, updated_at=at,
            ))
            assert result.inserted_primary_key is not None
            upload_id = int(result.inserted_primary_key[0])
            await _step(conn, upload_id, at, status, None)
        return Upload(id=upload_id, charger_id=charger_id, params=params, status=status,
                      receipt=Receipt.WAITING, created_at=at, updated_at=at, expires_at=expires_at)

    async def set_status(
        self, upload_id: int, status: str, at: datetime, *, detail: str | None = None,
        filename: str | None = None,
    ) -> Upload | None:
        """Record a new status (and the station's file name, if it gave one) with its step."""
        values: dict[str, object] = {"status": status, "updated_at": at}
        if filename is not None:
            values["filename"] = filename
        if detail is not None:
            values["detail"] = detail
        async with self._db.write() as conn:
            done = await conn.execute(t.uploads.update().where(t.uploads.c.id == upload_id).values(**values))
            if not done.rowcount:
                return None
            await _step(conn, upload_id, at, status, detail)
            return await self._one(conn, t.uploads.c.id == upload_id)

    async def answered(
        self, upload_id: int, status: str, at: datetime, *, filename: str | None
    ) -> Upload | None:
        """Record the station's answer; the status moves only from ``Requested`` (a notification
        may have overtaken the answer)."""
        c = t.uploads.c
        async with self._db.write() as conn:
            await conn.execute(t.uploads.update().where(c.id == upload_id, c.status == REQUESTED)
                               .values(status=status, updated_at=at))
            if filename is not None:
                await conn.execute(
                    t.uploads.update().where(c.id == upload_id).values(filename=filename[:255]))
            await _step(conn, upload_id, at, status, filename and f"file {filename}")
            return await self._one(conn, c.id == upload_id)

    async def get(self, upload_id: int) -> Upload | None:
        async with self._db.read() as conn:
            return await self._one(conn, t.uploads.c.id == upload_id)

    async def latest(self, charger_id: str, kind: Kind) -> Upload | None:
        """The station's newest upload of ``kind`` (1.6 diagnostics notifications carry no request id)."""
        c = t.uploads.c
        q = (sa.select(t.uploads).where(c.charger_id == charger_id, c.kind == kind.value)
             .order_by(c.id.desc()).limit(1))
        async with self._db.read() as conn:
            row = (await conn.execute(q)).first()
        return _upload(row._mapping) if row is not None else None

    async def claim(
        self, token_hash: str, now: datetime, *, stale_before: datetime | None = None
    ) -> Upload | Claim:
        """Take the token's one upload: the upload (now ``receiving``), or why not. A ``receiving``
        claim last touched before ``stale_before`` broke off without a word (a crash): it is free again."""
        c = t.uploads.c
        free = c.receipt == Receipt.WAITING.value
        if stale_before is not None:
            free = sa.or_(free, sa.and_(c.receipt == Receipt.RECEIVING.value, c.updated_at < stale_before))
        async with self._db.write() as conn:
            upload = await self._one(conn, c.token_hash == token_hash)
            if upload is None or not accepts_file(upload, now):
                return Claim.UNKNOWN
            done = await conn.execute(
                t.uploads.update().where(c.id == upload.id, free)
                .values(receipt=Receipt.RECEIVING.value, updated_at=now)
            )
            if not done.rowcount:
                return Claim.TAKEN
            if upload.receipt is Receipt.RECEIVING:
                await _step(conn, upload.id, now, "UploadAborted", "a stale upload was taken over")
        return replace(upload, receipt=Receipt.RECEIVING)

    async def release(self, upload_id: int, at: datetime, detail: str) -> None:
        """An upload broke off: the URL takes a new one (a station's retry)."""
        c = t.uploads.c
        async with self._db.write() as conn:
            await conn.execute(
                t.uploads.update().where(c.id == upload_id, c.receipt == Receipt.RECEIVING.value)
                .values(receipt=Receipt.WAITING.value, updated_at=at))
            await _step(conn, upload_id, at, "UploadAborted", detail)

    async def received(
        self, upload_id: int, at: datetime, *, size_bytes: int, sha256: str, filename: str | None
    ) -> Upload | None:
        """The file is kept: its size, digest and (when the station had not named it) its name."""
        c = t.uploads.c
        values: dict[str, object] = {"receipt": Receipt.RECEIVED.value, "size_bytes": size_bytes,
                                     "sha256": sha256, "received_at": at, "updated_at": at}
        async with self._db.write() as conn:
            current = await self._one(conn, c.id == upload_id)
            if current is None:
                return None
            if current.filename is None and filename:
                values["filename"] = filename[:255]
            await conn.execute(t.uploads.update().where(c.id == upload_id).values(**values))
            await _step(conn, upload_id, at, "FileReceived", f"{size_bytes} bytes, sha256 {sha256}")
            return await self._one(conn, c.id == upload_id)

    async def list_uploads(
        self, *, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Upload]:
        """Newest first; ``before_id`` pages on (ids below it)."""
        c = t.uploads.c
        q = sa.select(t.uploads).order_by(c.id.desc()).limit(limit)
        if charger_id is not None:
            q = q.where(c.charger_id == charger_id)
        if before_id is not None:
            q = q.where(c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [_upload(r._mapping) for r in rows]

    async def steps(self, upload_id: int) -> list[Step]:
        s = t.upload_steps.c
        q = sa.select(t.upload_steps).where(s.upload_id == upload_id).order_by(s.pk)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [Step(m["at"], m["event"], m["detail"]) for m in (r._mapping for r in rows)]

    async def received_before(self, cutoff: datetime, limit: int = 500) -> list[int]:
        """Ids of kept files received before ``cutoff``, oldest first (at most ``limit``)."""
        c = t.uploads.c
        q = (sa.select(c.id).where(c.receipt == Receipt.RECEIVED.value, c.received_at < cutoff)
             .order_by(c.received_at).limit(limit))
        async with self._db.read() as conn:
            return [int(r[0]) for r in (await conn.execute(q)).all()]

    async def existing(self, upload_ids: Sequence[int]) -> set[int]:
        """Which of ``upload_ids`` have a record (a station's removal deletes its uploads' records)."""
        c, found = t.uploads.c, set[int]()
        async with self._db.read() as conn:
            for i in range(0, len(upload_ids), 500):
                rows = await conn.execute(sa.select(c.id).where(c.id.in_(upload_ids[i:i + 500])))
                found.update(int(r[0]) for r in rows.all())
        return found

    async def pruned(self, upload_id: int, at: datetime) -> None:
        c = t.uploads.c
        async with self._db.write() as conn:
            done = await conn.execute(
                t.uploads.update().where(c.id == upload_id, c.receipt == Receipt.RECEIVED.value)
                .values(receipt=Receipt.PRUNED.value, updated_at=at))
            if done.rowcount:
                await _step(conn, upload_id, at, "FilePruned", None)
