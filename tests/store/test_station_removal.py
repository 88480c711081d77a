"""Removing a station deletes what the features keep about it, and removing a site its tariff
assignment, in one transaction, on SQLite and PostgreSQL; other stations' records and the removed
station's history stay."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from csms.core.model import AuthStatus
from csms.core.sites import Site
from csms.desired_config.rules import KeyResult, ResultStatus
from csms.local_lists.rules import Change, Entry, Message, UpdateType
from csms.reservations.rules import ReservationRequest
from csms.store import schema as t
from csms.store.desired_config import SqlDesiredConfig
from csms.store.profiles import SqlOperatorCommands
from csms.store.removal import STATION_TABLES
from csms.store.reservations import SqlReservations
from csms.store.sql import SqlStore
from csms.store.tariffs import SqlTariffs
from csms.store.uploads import SqlUploads
from csms.uploads.rules import Kind, UploadParams
from tests.store.test_store_contract import T0


async def _records_of(store: SqlStore, station_id: str) -> list[int]:
    """One record of each kind for ``station_id``, written by each feature's store; its upload ids."""
    await store.upsert_station(station_id)
    later = T0 + timedelta(hours=1)
    await SqlReservations(store.db).create(ReservationRequest(station_id, 1, "TAG1", later), T0)
    uploads = SqlUploads(store.db)
    upload = await uploads.create(station_id, UploadParams(kind=Kind.DIAGNOSTICS), status="Requested",
                                  token_hash=f"hash-{station_id}", expires_at=later, at=T0)
    await uploads.set_status(upload.id, "Uploading", T0)
    await SqlDesiredConfig(store.db).save_results(
        station_id, [KeyResult("HeartbeatInterval", "300", ResultStatus.ACCEPTED, T0)])
    async with store.db.write() as conn:  # an operator profile as csms.store.profiles keeps it
        await conn.execute(t.operator_profiles.insert().values(
            station_id=station_id, profile_id=7, evse_id=1, purpose="TxDefaultProfile", stack_level=1,
            profile="{}", status="Accepted", set_at=T0))
    await SqlOperatorCommands(store.db).record_command(station_id, "SetDisplayMessage", {}, "Accepted", {},
                                                       T0)
    await store.local_lists.accepted(
        station_id, Message(UpdateType.FULL, 3, (Change("TAG1", Entry("TAG1", AuthStatus.ACCEPTED)),)),
        entries=1, in_sync=True, digest="d")
    await store.set_pending_password(station_id, "hash")
    await SqlTariffs(store.db).assign("station", station_id, "TARIFF1")
    await store.start_transaction(station_id, evse_id=1, connector_id=1, id_tag="TAG1", meter_start_wh=0.0,
                                  ts=T0)
    return [upload.id]


async def _counts(store: SqlStore, station_id: str, upload_ids: list[int]) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with store.db.read() as conn:
        for table, column in STATION_TABLES:
            query = sa.select(sa.func.count()).select_from(table).where(table.c[column] == station_id)
            counts[table.name] = (await conn.execute(query)).scalar_one()
        counts["upload_steps"] = (await conn.execute(sa.select(sa.func.count()).select_from(t.upload_steps)
                                  .where(t.upload_steps.c.upload_id.in_(upload_ids)))).scalar_one()
    assignments = await SqlTariffs(store.db).assignments()
    counts["tariff_assignments"] = sum(1 for scope, target, _ in assignments if (scope, target) == (
        "station", station_id))
    return counts


async def test_removing_a_station_deletes_its_feature_records_and_keeps_its_history(store: SqlStore) -> None:
    gone = await _records_of(store, "S1")
    kept = await _records_of(store, "S2")
    before = await _counts(store, "S1", gone)
    others = await _counts(store, "S2", kept)
    assert all(n >= 1 for n in before.values()), before  # every kind was written

    assert await store.stations.remove_station("S1") == gone
    assert await _counts(store, "S1", gone) == dict.fromkeys(before, 0)
    assert await _counts(store, "S2", kept) == others
    assert await store.local_lists.state("S1") is None and await store.local_lists.state("S2") is not None
    assert [tx.station_id for tx in await store.list_transactions(station_id="S1")] == ["S1"]  # history

    assert not await store.delete_station("S1")  # already gone


async def test_removing_a_site_deletes_its_tariff_assignment(store: SqlStore) -> None:
    tariffs = SqlTariffs(store.db)
    for site_id in ("SITE1", "SITE2"):
        await store.sites.put_site(Site(site_id, f"Site {site_id}"))
        await tariffs.assign("site", site_id, "TARIFF1")
    await tariffs.assign("group", "SITE1", "TARIFF1")  # a group of the same name is another target
    assert await store.sites.delete_site("SITE1")
    assert sorted(await tariffs.assignments()) == [
        ("group", "SITE1", "TARIFF1"), ("site", "SITE2", "TARIFF1")]
