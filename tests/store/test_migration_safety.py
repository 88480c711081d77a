"""Migrations are safe to repeat and to start on two nodes at once."""

from __future__ import annotations

import asyncio
from pathlib import Path

import sqlalchemy as sa

from csms.store import schema
from csms.store.sql import SqlStore


def test_the_local_lists_step_runs_again_on_a_table_that_already_has_its_column(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'again.sqlite3'}")
    try:
        with engine.begin() as conn:
            schema.migrate(conn)
            schema._v12_local_lists(conn)  # a half-applied upgrade being retried
            columns = [c["name"] for c in sa.inspect(conn).get_columns("id_tags")]
        assert columns.count("tag_group") == 1
    finally:
        engine.dispose()


async def test_two_nodes_opening_a_fresh_postgresql_database_together_both_start(pg_url: str) -> None:
    stores = await asyncio.gather(*(SqlStore.open(pg_url) for _ in range(3)))
    try:
        async with stores[0].engine.connect() as conn:
            versions = (await conn.execute(sa.select(schema.schema_version.c.version))).scalars().all()
        assert sorted(versions) == list(range(1, len(schema.MIGRATIONS) + 1))  # each step applied once
    finally:
        async with stores[0].engine.begin() as conn:
            await conn.execute(sa.text("DROP SCHEMA public CASCADE"))
            await conn.execute(sa.text("CREATE SCHEMA public"))
        for store in stores:
            await store.close()
