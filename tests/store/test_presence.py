"""Presence rows: a newer session of a station keeps its row when the older one ends, and a
restarted node clears only its own earlier runs' rows."""

from __future__ import annotations

from csms.store.presence import SqlPresence
from csms.store.sql import SqlStore


async def test_an_older_session_ending_leaves_the_newer_sessions_row(store: SqlStore) -> None:
    presence = SqlPresence(store.db)
    first, replaced = await presence.claim("CP-1", "core-1.aaaaaa", "gw-1.bbbbbb", "ocpp1.6")
    assert replaced is None
    second, replaced = await presence.claim("CP-1", "core-1.aaaaaa", "gw-1.bbbbbb", "ocpp1.6")
    assert replaced is not None and replaced.since == first
    assert not await presence.release("CP-1", "core-1.aaaaaa", first)  # the older session ends
    row = await presence.get("CP-1")
    assert row is not None and row.since == second
    assert await presence.release("CP-1", "core-1.aaaaaa", second)
    assert await presence.get("CP-1") is None


async def test_a_claim_through_another_core_names_the_core_it_replaced(store: SqlStore) -> None:
    presence = SqlPresence(store.db)
    await presence.claim("CP-2", "core-1.aaaaaa", "gw-1.bbbbbb", "ocpp2.0.1")
    _, replaced = await presence.claim("CP-2", "core-2.cccccc", "gw-2.dddddd", "ocpp2.0.1")
    assert replaced is not None and replaced.core == "core-1.aaaaaa"
    assert not await presence.release("CP-2", "core-1.aaaaaa")  # the old core ends its session late
    assert (await presence.counts()) == {("core-2.cccccc", "gw-2.dddddd"): 1}


async def test_a_restarted_node_clears_its_earlier_runs_only(store: SqlStore) -> None:
    presence = SqlPresence(store.db)
    await presence.claim("A", "eu.111111", "gw.222222", "ocpp1.6")  # node "eu", an earlier run
    await presence.claim("B", "eu.core-2.333333", "gw.222222", "ocpp1.6")  # node "eu.core-2", alive
    await presence.claim("C", "eu.444444", "gw.222222", "ocpp1.6")  # node "eu", this run
    assert await presence.drop_node_before("eu", "eu.444444") == 1
    assert {r.station_id for r in await presence.all()} == {"B", "C"}
    assert set(await presence.stations_of("eu.444444")) == {"C"}
