"""The upload service: asks stations for files, follows their notifications, receives the files.

Each request gets a fresh unguessable token; the station uploads to
``{public_base}/uploads/{token}`` (the store keeps only the token's SHA-256). Notifications
arrive on the bus and are applied in order by one worker. ``tick(now)`` deletes files past the
retention period (a singleton decision: one node may run it for all).
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import structlog

from csms.cluster.elected import Elected, always
from csms.core.events import Event, StationReported
from csms.core.ports import Clock
from csms.errors import ControlError
from csms.store.uploads import Claim, SqlUploads
from csms.uploads.files import FileStore, TooLarge
from csms.uploads.requests import LogRequests
from csms.uploads.rules import (
    ACCEPTED_CANCELED,
    CANCELED,
    FAILED,
    REQUESTED,
    Progress,
    Step,
    Upload,
    UploadParams,
    canceled_by,
    expiry,
    is_open,
    next_status,
    progress_of,
    prune_cutoff,
    token_digest,
)

log = structlog.get_logger("csms.uploads")

WATCHED = (StationReported,)


class Refused(Exception):
    """An upload the receiver turns away: ``status`` is the HTTP status, ``code`` the API error code."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


@dataclass(frozen=True, slots=True, kw_only=True)
class UploadLimits:
    max_bytes: int
    token_ttl_s: float
    retention_days: float
    prune_interval_s: float
    receive_timeout_s: float = 600.0  # longest read of a body; a claim older than this is free again
    queue: int = 10_000


@dataclass(frozen=True, slots=True)
class _Reported:
    station_id: str
    at: datetime
    progress: Progress


class UploadService:
    """Requests, progress and receipt of diagnostics and log files."""

    def __init__(
        self, store: SqlUploads, files: FileStore, requests: LogRequests, clock: Clock, limits: UploadLimits,
        *, public_base: str = "", on_received: Callable[[int], None] = lambda size: None,
        on_refused: Callable[[str], None] = lambda code: None,
    ) -> None:
        self.store = store
        self.files = files
        self.requests = requests
        self.clock = clock
        self.limits = limits
        self.public_base = public_base  # set once the HTTP server listens
        self.on_received = on_received  # a file was kept (its size in bytes)
        self.on_refused = on_refused  # an upload was turned away (the error code)
        self._inbox: asyncio.Queue[_Reported] = asyncio.Queue(limits.queue)
        self.dropped = 0

    def url(self, token: str) -> str:
        return f"{self.public_base}/uploads/{token}"

    # --- requests ------------------------------------------------------------------------
    async def request(self, charger_id: str, params: UploadParams) -> Upload:
        """Create the upload, send the request, keep the answer (``Failed`` when none came)."""
        now = self.clock.now()
        token = secrets.token_urlsafe(32)
        upload = await self.store.create(charger_id, params, status=REQUESTED, token_hash=token_digest(token),
                                         expires_at=expiry(now, self.limits.token_ttl_s), at=now)
        try:
            answer = await self.requests.request(charger_id, self.url(token), upload.id, params)
        except ControlError as exc:
            failed = await self.store.set_status(upload.id, FAILED, self.clock.now(),
                                                 detail=f"{type(exc).__name__}: {exc}")
            assert failed is not None
            return failed
        kept = await self.store.answered(upload.id, answer.status, self.clock.now(), filename=answer.filename)
        assert kept is not None
        older_ones = [] if answer.status != ACCEPTED_CANCELED else await self.store.list_uploads(
            charger_id=charger_id, limit=50, before_id=kept.id)
        for older in older_ones:
            if canceled_by(kept, answer, older):
                await self.store.set_status(older.id, CANCELED, self.clock.now(),
                                            detail=f"canceled by upload {kept.id}")
        return kept

    # --- notifications --------------------------------------------------------------------
    def on_event(self, ev: Event) -> None:
        """Bus handler: queue the upload progress a notification carries."""
        if not isinstance(ev, StationReported):
            return
        progress = progress_of(ev.action, ev.data)
        if progress is None:
            return
        try:
            self._inbox.put_nowait(_Reported(ev.station_id, ev.ts, progress))
        except asyncio.QueueFull:
            self.dropped += 1

    async def run(self, *, elected: Elected = always) -> None:
        """Apply queued notifications in order, and prune every ``prune_interval_s`` while ``elected()``."""
        pruning = asyncio.create_task(self._prune_forever(elected))
        try:
            while True:
                item = await self._inbox.get()
                try:
                    await self.apply(item.station_id, item.progress, item.at)
                except Exception:
                    log.exception("upload progress not recorded", station=item.station_id)
        finally:
            pruning.cancel()

    async def apply(self, station_id: str, progress: Progress, at: datetime) -> Upload | None:
        """Move the upload ``progress`` is about (by request id, else the station's newest of its
        kind) to its new status; None when it is about no open upload."""
        upload: Upload | None = None
        if progress.request_id is not None:
            upload = await self.store.get(progress.request_id)
            if upload is not None and (upload.charger_id, upload.params.kind) != (station_id, progress.kind):
                upload = None
        else:
            upload = await self.store.latest(station_id, progress.kind)
        if upload is None or not is_open(upload):
            return None
        status = next_status(upload, progress)
        if status is None:
            return upload
        return await self.store.set_status(upload.id, status, at)

    # --- the receiver -----------------------------------------------------------------------
    @property
    def max_bytes(self) -> int:
        return self.files.max_bytes

    def file_path(self, upload_id: int) -> Path:
        return self.files.path(upload_id)

    async def receive(
        self, token: str, chunks: AsyncIterator[bytes], filename: Callable[[], str | None]
    ) -> Upload:
        """Keep the file streamed in ``chunks`` for ``token``'s upload (``filename()``: the name the
        upload carried, read once it is in); ``Refused`` 404 for an unknown or expired token, 409 when
        its upload arrived already, 413 over ``max_bytes``."""
        now = self.clock.now()
        stale_before = now - timedelta(seconds=self.limits.receive_timeout_s)
        claim = await self.store.claim(token_digest(token), now, stale_before=stale_before)
        if claim is Claim.UNKNOWN:
            self.on_refused("not_found")
            raise Refused(404, "not_found", "no upload is expected at this address (unknown or expired)")
        if claim is Claim.TAKEN:
            self.on_refused("conflict")
            raise Refused(409, "conflict", "this address took its upload already")
        assert isinstance(claim, Upload)
        try:
            async with asyncio.timeout(self.limits.receive_timeout_s):
                written = await self.files.write(claim.id, chunks)
        except TooLarge as exc:
            await self.store.release(claim.id, self.clock.now(), str(exc))
            self.on_refused("payload_too_large")
            raise Refused(413, "payload_too_large", str(exc)) from None
        except TimeoutError:
            detail = f"the upload took longer than {self.limits.receive_timeout_s:g} s"
            await self.store.release(claim.id, self.clock.now(), detail)
            self.on_refused("timeout")
            raise Refused(408, "timeout", f"{detail} (uploads.receive_timeout_s)") from None
        except BaseException as exc:
            await asyncio.shield(self.store.release(claim.id, self.clock.now(),
                                                    f"the upload broke off: {type(exc).__name__}"))
            self.on_refused("broken")
            raise
        try:
            kept = await self.store.received(claim.id, self.clock.now(), size_bytes=written.size_bytes,
                                             sha256=written.sha256, filename=filename())
        except BaseException as exc:  # not recorded: the address takes the station's retry
            await asyncio.shield(self._forget(claim.id, f"the file was not recorded: {type(exc).__name__}"))
            self.on_refused("broken")
            raise
        assert kept is not None
        self.on_received(written.size_bytes)
        log.info("upload received", upload=claim.id, station=claim.charger_id, size=written.size_bytes)
        return kept

    async def _forget(self, upload_id: int, detail: str) -> None:
        """Remove a received file the store did not record, and free its address (best effort)."""
        await self.files.delete(upload_id)
        try:
            await self.store.release(upload_id, self.clock.now(), detail)
        except Exception:
            log.exception("upload claim not released; it frees itself after uploads.receive_timeout_s",
                          upload=upload_id)

    # --- reading ------------------------------------------------------------------------------
    async def get(self, upload_id: int) -> Upload | None:
        return await self.store.get(upload_id)

    async def list_uploads(
        self, *, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Upload]:
        return await self.store.list_uploads(charger_id=charger_id, limit=limit, before_id=before_id)

    async def timeline(self, upload_id: int) -> list[Step]:
        return await self.store.steps(upload_id)

    # --- retention ----------------------------------------------------------------------------
    async def tick(self, now: datetime) -> int:
        """Delete the files received before the retention period; how many were deleted."""
        cutoff = prune_cutoff(now, self.limits.retention_days)
        count = 0
        while ids := await self.store.received_before(cutoff):
            for upload_id in ids:
                await self.files.delete(upload_id)
                await self.store.pruned(upload_id, now)
                count += 1
        if count:
            log.info("old uploads deleted", count=count)
        await self.sweep()
        return count

    async def sweep(self) -> int:
        """Delete the files whose upload has no record any more (its station was removed, by the API
        or by ``csms stations remove``); how many were deleted."""
        on_disk = await self.files.ids()
        orphans = sorted(set(on_disk) - await self.store.existing(on_disk)) if on_disk else []
        for upload_id in orphans:
            await self.files.delete(upload_id)
        if orphans:
            log.info("files of removed stations' uploads deleted", count=len(orphans))
        return len(orphans)

    async def _prune_forever(self, elected: Elected) -> None:
        while True:
            try:
                if elected():
                    await self.tick(self.clock.now())
            except Exception:
                log.exception("pruning old uploads failed")
            await asyncio.sleep(self.limits.prune_interval_s)

