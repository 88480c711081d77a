"""A database written by an earlier release is upgraded in place, its data kept."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from csms.core.audit import AuditEntry, digest
from csms.core.model import ConnectorState, StationInfo
from csms.core.station_events import EventQuery, SignedMeterValue, StationEvent
from csms.store import schema
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion
from tests.store.test_store_contract import T0


def _database_of_version(path: Path, version: int) -> None:
    """What the release with schema ``version`` created (the first ``version`` migrations)."""
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        for number, step in enumerate(schema.MIGRATIONS[:version], start=1):
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number))
        conn.execute(schema.stations.insert().values(station_id="OLD-1", security_profile=0))
    engine.dispose()


async def test_a_version_2_database_gains_device_variables_and_keeps_its_data(tmp_path: Path) -> None:
    db = tmp_path / "old.sqlite3"
    _database_of_version(db, 2)
    store = await SqlStore.open(str(db))
    try:
        async with store.engine.connect() as conn:
            version = (await conn.execute(sa.select(sa.func.max(schema.schema_version.c.version)))).scalar()
        assert version == len(schema.MIGRATIONS)
        entry = AuditEntry(T0, "cli:ops", "stations add", "OLD-1", digest({}), "ok")
        assert await store.record_audit(entry) == 1  # the audit table was added too
        assert await store.get_station("OLD-1") is not None  # kept
        await store.record_boot("OLD-1", OcppVersion.V201, StationInfo("V", "M"), T0)
        await store.save_connectors([("OLD-1", ConnectorState(1, 1, "Available", None, T0))])
        await store.save_variables([("OLD-1", "OCPPCommCtrlr/HeartbeatInterval/Actual", "60")])
        assert await store.load_variables() == {"OLD-1": {"OCPPCommCtrlr/HeartbeatInterval/Actual": "60"}}
    finally:
        await store.close()
    again = await SqlStore.open(str(db))  # opening an up-to-date database changes nothing
    try:
        assert await again.load_variables() == {"OLD-1": {"OCPPCommCtrlr/HeartbeatInterval/Actual": "60"}}
    finally:
        await again.close()


async def test_a_version_3_database_gains_station_events_and_signed_meter_values(tmp_path: Path) -> None:
    db = tmp_path / "v3.sqlite3"
    _database_of_version(db, 3)
    store = await SqlStore.open(str(db))
    try:
        assert await store.get_station("OLD-1") is not None
        ids = await store.save_station_events([StationEvent(None, "OLD-1", T0, None, "Heartbeat", {})])
        assert [e.id for e in await store.list_station_events(EventQuery("OLD-1"))] == ids
        signed = SignedMeterValue("OLD-1", "7", T0, T0, None, None, "SignedData", None, None, "blob")
        await store.save_signed_meter_values([signed])
        assert await store.list_signed_meter_values("OLD-1", "7") == [signed]
    finally:
        await store.close()


async def test_a_database_before_reservations_gains_them_and_its_transactions_keep_their_data(
    tmp_path: Path,
) -> None:
    db = tmp_path / "pre-reservations.sqlite3"
    before = schema.MIGRATIONS.index(schema._v13_reservations)
    _database_of_version(db, before)
    engine = sa.create_engine(f"sqlite:///{db}")
    with engine.begin() as conn:  # the transactions table as it was before the column
        conn.execute(sa.text("ALTER TABLE transactions DROP COLUMN reservation_id"))
        conn.execute(schema.transactions.insert().values(
            station_id="OLD-1", tx_id="7", protocol="ocpp1.6", evse_id=1, connector_id=1, started_at=T0,
            flags="", received_at=T0))
    engine.dispose()
    store = await SqlStore.open(str(db))
    try:
        tx = await store.get_transaction("OLD-1", "7")
        assert tx is not None and tx.reservation_id is None and tx.started_at == T0
        async with store.engine.connect() as conn:
            count = sa.select(sa.func.count()).select_from(schema.reservations)
            assert (await conn.execute(count)).scalar() == 0
    finally:
        await store.close()
