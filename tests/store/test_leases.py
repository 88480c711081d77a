"""The lease table on SQLite and PostgreSQL: renew, refuse, take over after expiry, release."""

from __future__ import annotations

import asyncio

from csms.store.leases import SqlLeases
from csms.store.sql import SqlStore


async def test_a_lease_is_renewed_by_its_holder_and_refused_to_others(store: SqlStore) -> None:
    leases = SqlLeases(store.db)
    first = await leases.claim("expiry", "a", None, 30)
    assert first is not None and first.token == 1
    again = await leases.claim("expiry", "a", first.token, 30)
    assert again is not None and again.token == 1 and again.expires_at >= first.expires_at
    assert await leases.claim("expiry", "b", None, 30) is None
    assert await leases.claim("expiry", "a", None, 30) is None  # a restarted "a" does not know the token
    [row] = await leases.list()
    assert (row.name, row.holder, row.token) == ("expiry", "a", 1)


async def test_an_expired_lease_is_taken_over_with_a_greater_token(store: SqlStore) -> None:
    leases = SqlLeases(store.db)
    held = await leases.claim("expiry", "a", None, 0.3)
    assert held is not None
    await asyncio.sleep(0.5)
    taken = await leases.claim("expiry", "b", None, 30)
    assert taken is not None and taken.token == held.token + 1
    assert await leases.claim("expiry", "a", held.token, 30) is None  # the old holder is fenced off
    assert not await leases.release("expiry", "a", held.token)
    [row] = await leases.list()
    assert (row.holder, row.token) == ("b", 2)


async def test_a_release_lets_another_node_in_at_once(store: SqlStore) -> None:
    leases = SqlLeases(store.db)
    held = await leases.claim("expiry", "a", None, 30)
    assert held is not None
    assert await leases.release("expiry", "a", held.token)
    taken = await leases.claim("expiry", "b", None, 30)
    assert taken is not None and taken.token == 2
    assert (await leases.db_now()) < taken.expires_at
