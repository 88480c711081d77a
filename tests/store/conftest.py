"""The store under test, once on SQLite and once on a private PostgreSQL cluster."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from csms.store.sql import SqlStore
from tests.services import postgres_server


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
        if request.param == "postgresql":  # shared cluster: leave it empty for the next test
            import sqlalchemy as sa

            from csms.store import schema

            every = [m for m in vars(schema).values() if isinstance(m, sa.MetaData)]  # every migration
            async with s.engine.begin() as conn:
                for tables in every:
                    await conn.run_sync(tables.drop_all)
                await conn.run_sync(schema.metadata.drop_all)
                await conn.run_sync(schema.security_metadata.drop_all)
                await conn.run_sync(schema.device_metadata.drop_all)
                await conn.run_sync(schema.alarm_metadata.drop_all)
                await conn.run_sync(schema.events_metadata.drop_all)
                await conn.run_sync(schema.audit_metadata.drop_all)
                await conn.run_sync(schema.reservations_metadata.drop_all)
        await s.close()
