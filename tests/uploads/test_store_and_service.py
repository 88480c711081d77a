"""The upload tables on SQLite and PostgreSQL, and the service's decisions with a fake clock and a
recording station port: claims, releases, answers overtaken by notifications, pruning."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.errors import CallTimeout
from csms.store import schema
from csms.store.sql import SqlStore
from csms.store.uploads import Claim, SqlUploads
from csms.uploads.files import FileStore
from csms.uploads.rules import (
    Kind,
    LogType,
    Progress,
    Receipt,
    RequestAnswer,
    Upload,
    UploadParams,
    token_digest,
)
from csms.uploads.service import Refused, UploadLimits, UploadService

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)
LOG = UploadParams(kind=Kind.LOG, log_type=LogType.DIAGNOSTICS_LOG)


class FakeClock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class RecordingStation:
    """Answers every request with ``answer`` (or raises ``error``) and records the addresses."""

    def __init__(self) -> None:
        self.answer = RequestAnswer("Accepted", "station.log")
        self.error: Exception | None = None
        self.locations: list[tuple[int, str]] = []

    async def request(
        self, station_id: str, location: str, request_id: int, params: UploadParams
    ) -> RequestAnswer:
        self.locations.append((request_id, location))
        if self.error is not None:
            raise self.error
        return self.answer


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for p in parts:
        yield p


def make_service(
    uploads: SqlUploads, tmp_path: Path, clock: FakeClock, station: RecordingStation
) -> UploadService:
    limits = UploadLimits(max_bytes=100, token_ttl_s=600, retention_days=30, prune_interval_s=3600)
    return UploadService(uploads, FileStore(tmp_path / "uploads", 100), station, clock, limits,
                         public_base="http://csms.example")


@pytest.fixture
async def uploads(store: SqlStore) -> AsyncIterator[SqlUploads]:
    yield SqlUploads(store.db)
    if store.engine.dialect.name == "postgresql":  # the shared cluster: leave it empty
        async with store.engine.begin() as conn:
            await conn.run_sync(schema.uploads_metadata.drop_all)


async def test_a_token_takes_one_upload_until_it_expires(uploads: SqlUploads) -> None:
    u = await uploads.create("CP1", LOG, status="Requested", token_hash=token_digest("t"),
                             expires_at=T0 + timedelta(minutes=10), at=T0)
    assert await uploads.claim(token_digest("nope"), T0) is Claim.UNKNOWN
    claimed = await uploads.claim(token_digest("t"), T0)
    assert not isinstance(claimed, Claim) and claimed.id == u.id and claimed.receipt is Receipt.RECEIVING
    assert await uploads.claim(token_digest("t"), T0) is Claim.TAKEN  # while it streams in
    await uploads.release(u.id, T0, "broke off")
    assert not isinstance(await uploads.claim(token_digest("t"), T0), Claim)  # a retry may come
    kept = await uploads.received(u.id, T0, size_bytes=3, sha256="ab" * 32, filename="form.log")
    assert kept is not None and kept.receipt is Receipt.RECEIVED and kept.filename == "form.log"
    assert await uploads.claim(token_digest("t"), T0) is Claim.TAKEN
    other = await uploads.create("CP1", LOG, status="Requested", token_hash=token_digest("u"),
                                 expires_at=T0 + timedelta(minutes=10), at=T0)
    assert await uploads.claim(token_digest("u"), T0 + timedelta(minutes=10)) is Claim.UNKNOWN
    assert [x.id for x in await uploads.list_uploads(charger_id="CP1")] == [other.id, u.id]
    assert [x.id for x in await uploads.list_uploads(before_id=other.id, limit=5)] == [u.id]
    assert await uploads.list_uploads(charger_id="CP2") == []
    assert [s.event for s in await uploads.steps(u.id)] == ["Requested", "UploadAborted", "FileReceived"]


async def test_an_answer_does_not_undo_a_notification_that_overtook_it(uploads: SqlUploads) -> None:
    u = await uploads.create("CP1", LOG, status="Requested", token_hash=token_digest("t"),
                             expires_at=T0 + timedelta(minutes=10), at=T0)
    await uploads.set_status(u.id, "Uploading", T0)
    after = await uploads.answered(u.id, "Accepted", T0, filename="a.log")
    assert after is not None and after.status == "Uploading" and after.filename == "a.log"
    assert [s.event for s in await uploads.steps(u.id)] == ["Requested", "Uploading", "Accepted"]


async def test_service_sends_a_fresh_address_and_follows_notifications(
    uploads: SqlUploads, tmp_path: Path
) -> None:
    clock, station = FakeClock(), RecordingStation()
    service = make_service(uploads, tmp_path, clock, station)
    first = await service.request("CP1", LOG)
    second = await service.request("CP1", LOG)
    (id1, url1), (id2, url2) = station.locations
    assert (id1, id2) == (first.id, second.id) and url1 != url2
    assert url1.startswith("http://csms.example/uploads/") and len(url1.rsplit("/", 1)[1]) >= 40
    assert first.status == "Accepted" and first.filename == "station.log"
    # by request id; a request id of another station or kind changes nothing
    assert await service.apply("CP2", Progress(Kind.LOG, "Uploading", first.id), T0) is None
    moved = await service.apply("CP1", Progress(Kind.LOG, "Uploading", first.id), T0)
    assert moved is not None and moved.id == first.id and moved.status == "Uploading"
    # without one: the newest of the kind
    newest = await service.apply("CP1", Progress(Kind.LOG, "UploadFailure", None), T0)
    assert newest is not None and newest.id == second.id and newest.status == "UploadFailure"
    assert await service.apply("CP1", Progress(Kind.LOG, "Uploaded", second.id), T0) is None  # closed
    station.error = CallTimeout("no answer")
    failed = await service.request("CP1", LOG)
    assert failed.status == "Failed" and failed.detail is not None and "CallTimeout" in failed.detail


async def test_receiver_bounds_size_and_prunes_old_files(uploads: SqlUploads, tmp_path: Path) -> None:
    clock, station = FakeClock(), RecordingStation()
    service = make_service(uploads, tmp_path, clock, station)
    u = await service.request("CP1", LOG)
    token = station.locations[0][1].rsplit("/", 1)[1]
    with pytest.raises(Refused) as too_big:
        await service.receive(token, chunks(b"x" * 60, b"y" * 60), lambda: None)
    assert too_big.value.status == 413 and not list((tmp_path / "uploads").iterdir())
    kept = await service.receive(token, chunks(b"abc", b"def"), lambda: None)
    assert kept.size_bytes == 6 and service.file_path(u.id).read_bytes() == b"abcdef"
    with pytest.raises(Refused) as again:
        await service.receive(token, chunks(b"z"), lambda: None)
    assert again.value.status == 409
    clock.at = T0 + timedelta(days=29)
    assert await service.tick(clock.now()) == 0 and service.file_path(u.id).exists()
    clock.at = T0 + timedelta(days=31)
    assert await service.tick(clock.now()) == 1
    assert not service.file_path(u.id).exists()
    pruned = await service.get(u.id)
    assert pruned is not None and pruned.receipt is Receipt.PRUNED and pruned.size_bytes == 6
    with pytest.raises(Refused) as unknown:
        await service.receive("not-a-token", chunks(b"z"), lambda: None)
    assert unknown.value.status == 404


async def test_accepted_canceled_ends_the_stations_open_log_upload(
    uploads: SqlUploads, tmp_path: Path
) -> None:
    clock, station = FakeClock(), RecordingStation()
    service = make_service(uploads, tmp_path, clock, station)
    done = await service.request("CP1", LOG)
    await service.apply("CP1", Progress(Kind.LOG, "Uploaded", done.id), T0)
    running = await service.request("CP1", LOG)
    other_station = await service.request("CP2", LOG)
    station.answer = RequestAnswer("AcceptedCanceled", "new.log")
    newer = await service.request("CP1", LOG)
    assert newer.status == "AcceptedCanceled"
    statuses = {u.id: u.status for u in await service.list_uploads()}
    assert statuses == {done.id: "Uploaded", running.id: "Canceled", other_station.id: "Accepted",
                        newer.id: "AcceptedCanceled"}
    assert (await service.timeline(running.id))[-1].detail == f"canceled by upload {newer.id}"


async def test_a_claim_left_by_a_crash_frees_itself_after_the_receive_timeout(uploads: SqlUploads) -> None:
    u = await uploads.create("CP1", LOG, status="Requested", token_hash=token_digest("t"),
                             expires_at=T0 + timedelta(hours=1), at=T0)
    assert not isinstance(await uploads.claim(token_digest("t"), T0), Claim)  # then the process died
    later = T0 + timedelta(minutes=5)
    assert await uploads.claim(token_digest("t"), later, stale_before=T0) is Claim.TAKEN  # still fresh
    much_later = T0 + timedelta(minutes=11)
    stale_before = much_later - timedelta(minutes=10)
    taken = await uploads.claim(token_digest("t"), much_later, stale_before=stale_before)
    assert not isinstance(taken, Claim) and taken.id == u.id and taken.receipt is Receipt.RECEIVING
    assert [s.event for s in await uploads.steps(u.id)] == ["Requested", "UploadAborted"]


class FailingReceipt(SqlUploads):
    """The store refuses to record the receipt once."""

    def __init__(self, inner: SqlUploads) -> None:
        super().__init__(inner._db)
        self.fail = True

    async def received(self, upload_id: int, at: datetime, *, size_bytes: int, sha256: str,
                       filename: str | None) -> Upload | None:
        if self.fail:
            self.fail = False
            raise OSError("disk full")
        return await super().received(upload_id, at, size_bytes=size_bytes, sha256=sha256, filename=filename)


async def test_a_receipt_the_store_could_not_record_frees_the_address_and_removes_the_file(
    uploads: SqlUploads, tmp_path: Path
) -> None:
    clock, station = FakeClock(), RecordingStation()
    failing = FailingReceipt(uploads)
    service = make_service(failing, tmp_path, clock, station)
    u = await service.request("CP1", LOG)
    token = station.locations[0][1].rsplit("/", 1)[1]
    with pytest.raises(OSError):
        await service.receive(token, chunks(b"abc"), lambda: None)
    assert not service.file_path(u.id).exists()
    kept = await service.receive(token, chunks(b"again"), lambda: None)  # the station's retry
    assert kept.size_bytes == 5 and service.file_path(u.id).read_bytes() == b"again"


async def test_a_body_slower_than_the_receive_timeout_is_refused_and_its_address_freed(
    uploads: SqlUploads, tmp_path: Path
) -> None:
    clock, station = FakeClock(), RecordingStation()
    limits = UploadLimits(max_bytes=100, token_ttl_s=600, retention_days=30, prune_interval_s=3600,
                          receive_timeout_s=0.2)
    service = UploadService(uploads, FileStore(tmp_path / "uploads", 100), station, clock, limits,
                            public_base="http://csms.example")
    u = await service.request("CP1", LOG)
    token = station.locations[0][1].rsplit("/", 1)[1]

    async def trickle() -> AsyncIterator[bytes]:
        yield b"a"
        await asyncio.sleep(5)
        yield b"b"

    with pytest.raises(Refused) as slow:
        await service.receive(token, trickle(), lambda: None)
    assert slow.value.status == 408 and not list((tmp_path / "uploads").iterdir())
    kept = await service.receive(token, chunks(b"quick"), lambda: None)
    assert kept.id == u.id and kept.size_bytes == 5


async def test_files_of_a_removed_stations_uploads_are_swept_and_others_kept(
    store: SqlStore, uploads: SqlUploads, tmp_path: Path
) -> None:
    clock, station = FakeClock(), RecordingStation()
    service = make_service(uploads, tmp_path, clock, station)
    ups = {}
    for sid in ("CP1", "CP2"):
        await store.upsert_station(sid)
        ups[sid] = await service.request(sid, LOG)
        token = station.locations[-1][1].rsplit("/", 1)[1]
        await service.receive(token, chunks(b"log of " + sid.encode()), lambda: None)
    assert await service.sweep() == 0  # every file has its upload
    assert await store.delete_station("CP1")  # e.g. by ``csms stations remove``, without the server
    assert service.file_path(ups["CP1"].id).exists()
    assert await service.tick(clock.now()) == 0  # nothing was old enough to prune; the sweep ran too
    assert not service.file_path(ups["CP1"].id).exists()
    assert service.file_path(ups["CP2"].id).read_bytes() == b"log of CP2"
    assert await service.get(ups["CP1"].id) is None and await service.get(ups["CP2"].id) is not None
