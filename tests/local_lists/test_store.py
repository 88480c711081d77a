"""``SqlLocalLists`` on SQLite and PostgreSQL: tag groups, policies and what each station accepted."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from csms.core.model import AuthStatus, IdTag
from csms.local_lists.rules import Change, Entry, Known, Message, Policy, UpdateType
from csms.store import schema
from csms.store.sql import SqlStore

EXPIRY = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


async def test_id_tags_keep_their_group_beside_the_plain_registry(store: SqlStore) -> None:
    lists = store.local_lists
    assert await lists.put_tag(IdTag("A1", AuthStatus.ACCEPTED, EXPIRY, "P1"), "fleet-a")
    assert await lists.put_tag(IdTag("B1"), None)
    assert not await lists.put_tag(IdTag("A1", AuthStatus.BLOCKED), "fleet-b")  # replaced
    assert await lists.list_tags() == [(IdTag("A1", AuthStatus.BLOCKED), "fleet-b"), (IdTag("B1"), None)]
    assert await lists.list_tags(tag_group="fleet-b") == [(IdTag("A1", AuthStatus.BLOCKED), "fleet-b")]
    assert await store.get_id_tag("A1") == IdTag("A1", AuthStatus.BLOCKED)  # the core still reads it
    assert await lists.list_tags(after="A1", limit=5) == [(IdTag("B1"), None)]


async def test_policies_by_scope_with_the_default_first(store: SqlStore) -> None:
    lists = store.local_lists
    assert await lists.put_policy(Policy("depot", "fleet-a"))
    assert await lists.put_policy(Policy("", None))
    assert not await lists.put_policy(Policy("depot", None))
    assert [(p.scope, p.tag_group) for p in await lists.policies()] == [("", None), ("depot", None)]
    assert [p.scope for p in await lists.policies(after="", limit=1)] == ["depot"]
    assert await lists.delete_policy("depot") and not await lists.delete_policy("depot")
    assert await lists.policy("depot") is None


async def test_accepted_messages_build_the_station_list_and_failures_keep_it(store: SqlStore) -> None:
    lists = store.local_lists
    a, b = Entry("A", AuthStatus.ACCEPTED, EXPIRY, "P"), Entry("B", AuthStatus.BLOCKED)
    assert await lists.known("CP1") is None
    await lists.accepted("CP1", Message(UpdateType.FULL, 1, (Change("A", a),)), entries=1, in_sync=False)
    await lists.accepted("CP1", Message(UpdateType.DIFFERENTIAL, 2, (Change("B", b),)), entries=2,
                         in_sync=True)
    assert await lists.known("CP1") == Known(2, {"A": a, "B": b}, True)
    await lists.accepted("CP1", Message(UpdateType.DIFFERENTIAL, 3, (Change("A", None),)), entries=1,
                         in_sync=True)
    await lists.failed("CP1", "SendLocalList Differential version 4: Failed")
    known = await lists.known("CP1")
    assert known == Known(3, {"B": b}, False)
    state = await lists.state("CP1")
    assert state is not None and state.entries == 1 and state.error and state.update_type == "Differential"
    await lists.confirmed("CP1", 3, "d")
    state = await lists.state("CP1")
    assert state is not None and state.in_sync and state.error is None
    await lists.accepted("CP1", Message(UpdateType.FULL, 4, ()), entries=0, in_sync=True)
    assert await lists.known("CP1") == Known(4, {}, True)
    await lists.failed("CP2", "not supported")
    assert [s.station_id for s in await lists.states(limit=10)] == ["CP1", "CP2"]
    assert [s.station_id for s in await lists.states(after="CP1", limit=10)] == ["CP2"]
    await lists.forget("CP1")
    assert await lists.known("CP1") is None and [s.station_id for s in await lists.states()] == ["CP2"]


async def test_a_database_before_local_lists_keeps_its_id_tags_without_a_group(tmp_path: Path) -> None:
    db = tmp_path / "before.sqlite3"
    engine = sa.create_engine(f"sqlite:///{db}")
    before = schema.MIGRATIONS.index(schema._v12_local_lists)
    with engine.begin() as conn:
        schema.schema_version.create(conn)
        for number, step in enumerate(schema.MIGRATIONS[:before], start=1):
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number))
        conn.execute(schema.id_tags.insert().values(id_tag="OLD", status="Blocked", parent="P"))
    engine.dispose()
    store = await SqlStore.open(str(db))
    try:
        assert await store.local_lists.list_tags() == [(IdTag("OLD", AuthStatus.BLOCKED, None, "P"), None)]
        assert await store.local_lists.put_tag(IdTag("NEW"), "fleet")
        assert await store.list_id_tags() == [IdTag("NEW"), IdTag("OLD", AuthStatus.BLOCKED, None, "P")]
    finally:
        await store.close()
