"""Operator profiles and command outcomes on SQLite and on a private PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.profiles.rules import Answer, Kind, Period, Profile, Purpose, RateUnit
from csms.store import schema
from csms.store.profiles import SqlOperatorCommands, SqlProfiles
from csms.store.sql import SqlStore
from tests.services import postgres_server

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)
P = Profile(profile_id=5, evse_id=1, purpose=Purpose.TX_DEFAULT, stack_level=1, kind=Kind.ABSOLUTE,
            unit=RateUnit.A, periods=(Period(0, 16.0), Period(600, 8.0, 1)), start_schedule=T0)


@pytest.fixture(scope="module")
def pg_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SqlStore]:
    db = str(tmp_path / "s.sqlite3") if request.param == "sqlite" else request.getfixturevalue("pg_url")
    s = await SqlStore.open(db)
    try:
        yield s
    finally:
        async with s.engine.begin() as conn:  # the cluster is shared by this module's tests
            await conn.execute(schema.operator_profiles.delete())
            await conn.execute(schema.operator_commands.delete())
        await s.close()


async def test_profiles_are_kept_replaced_listed_by_id_and_removed(store: SqlStore) -> None:
    profiles = SqlProfiles(store.db)
    await profiles.put_profile("CP1", P, Answer("Rejected", "InvalidProfile"), T0)
    await profiles.put_profile("CP1", P, Answer("Accepted"), T0 + timedelta(seconds=1))  # the same id again
    await profiles.put_profile("CP1", replace(P, profile_id=2, stack_level=3), Answer("Accepted"), T0)
    await profiles.put_profile("CP2", P, Answer("Accepted"), T0)
    kept = await profiles.get_profile("CP1", 5)
    assert kept is not None and kept.profile == P and kept.answer == Answer("Accepted")
    assert kept.set_at == T0 + timedelta(seconds=1)
    assert [s.profile.profile_id for s in await profiles.list_profiles("CP1")] == [2, 5]
    assert [s.profile.profile_id for s in await profiles.list_profiles("CP1", limit=1)] == [2]
    assert [s.profile.profile_id for s in await profiles.list_profiles("CP1", after_id=2)] == [5]
    assert await profiles.delete_profile("CP1", 5) is True
    assert await profiles.delete_profile("CP1", 5) is False
    assert await profiles.get_profile("CP1", 5) is None
    assert await profiles.get_profile("CP2", 5) is not None


async def test_command_outcomes_page_newest_first_per_station(store: SqlStore) -> None:
    outcomes = SqlOperatorCommands(store.db)
    ids = [await outcomes.record_command("CP1", f"A{i}", {"n": i}, "Accepted", {"status": "Accepted"},
                                         T0 + timedelta(seconds=i)) for i in range(4)]
    await outcomes.record_command("CP2", "X", {}, "timeout", {"error": "no answer"}, T0)
    first = await outcomes.list_commands("CP1", limit=3)
    assert [o.id for o in first] == ids[:0:-1]
    assert first[0].request == {"n": 3} and first[0].result == {"status": "Accepted"}
    assert first[0].at == T0 + timedelta(seconds=3)
    rest = await outcomes.list_commands("CP1", limit=3, before_id=first[-1].id)
    assert [o.id for o in rest] == [ids[0]]
    [other] = await outcomes.list_commands("CP2")
    assert (other.action, other.status) == ("X", "timeout")
