"""The desired-configuration tables on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.desired_config.rules import DEFAULT, DesiredSet, KeyResult, ResultStatus, parse_set
from csms.store import schema
from csms.store.desired_config import SqlDesiredConfig
from csms.store.sql import SqlStore
from tests.services import postgres_server

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALL_METADATA = [schema.metadata, schema.security_metadata, schema.device_metadata, schema.alarm_metadata,
                schema.events_metadata, schema.audit_metadata, schema.sites_metadata,
                schema.desired_config_metadata]


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlDesiredConfig]:
    db = str(tmp_path / "s.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = await SqlStore.open(db)
    try:
        yield SqlDesiredConfig(s.db)
    finally:
        if request.param == "postgresql":  # shared cluster: leave it empty for the next test
            async with s.engine.begin() as conn:
                for meta in ALL_METADATA:
                    await conn.run_sync(meta.drop_all)
        await s.close()


async def test_sets_are_created_replaced_listed_and_deleted(store: SqlDesiredConfig) -> None:
    body = {"ocpp1.6": {"HeartbeatInterval": "300"}, "priority": 3, "ocpp2.0.1": [
        {"component": "EVSE", "evse": 2, "variable": "Power", "attribute_type": "MaxSet", "value": "7400"}]}
    first = parse_set("depot", body)
    assert await store.put_set(DesiredSet(first.group, first.priority, first.keys, first.variables, T0))
    assert await store.put_set(DesiredSet(DEFAULT, 0, {"A": "ü" * 500}, (), T0))
    later = T0 + timedelta(minutes=1)
    replaced = DesiredSet("depot", 9, {"HeartbeatInterval": "600"}, first.variables, later)
    assert not await store.put_set(replaced)
    got = {s.group: s for s in await store.all_sets()}
    assert list(got) == [DEFAULT, "depot"]
    assert got["depot"] == DesiredSet("depot", 9, {"HeartbeatInterval": "600"}, first.variables, later)
    assert got[DEFAULT].keys == {"A": "ü" * 500}
    assert await store.delete_set("depot")
    assert not await store.delete_set("depot")
    assert [s.group for s in await store.all_sets()] == [DEFAULT]


async def test_results_keep_the_last_answer_per_station_and_key(store: SqlDesiredConfig) -> None:
    long_key = "C" * 50 + "(" + "i" * 50 + ")[1.2]/" + "V" * 50 + "(" + "j" * 50 + ")/Actual"
    await store.save_results("S1", [
        KeyResult("HeartbeatInterval", "300", ResultStatus.ACCEPTED, T0),
        KeyResult(long_key, "x" * 2500, ResultStatus.REJECTED, T0, "OutOfRange: " + "y" * 400),
    ])
    hb = "HeartbeatInterval"
    await store.save_results("S2", [KeyResult(hb, "60", ResultStatus.NOT_SUPPORTED, T0)])
    later = T0 + timedelta(seconds=5)
    await store.save_results("S1", [KeyResult(hb, "600", ResultStatus.REBOOT_REQUIRED, later)])
    got = await store.results(["S1", "S2", "S3"])
    assert got["S3"] == {}
    assert got["S2"] == {hb: KeyResult(hb, "60", ResultStatus.NOT_SUPPORTED, T0)}
    assert got["S1"][hb] == KeyResult(hb, "600", ResultStatus.REBOOT_REQUIRED, later)
    kept = got["S1"][long_key]
    assert (kept.value, kept.status, len(kept.detail or "")) == ("x" * 2500, ResultStatus.REJECTED, 255)
