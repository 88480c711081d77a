"""The reservation table on SQLite and PostgreSQL: create, compare-and-set saves, listing, due."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from csms.reservations import rules
from csms.reservations.rules import OPEN, ReservationRequest, Status
from csms.store.reservations import SqlReservations
from csms.store.sql import SqlStore
from tests.store.test_store_contract import T0


def _req(station: str = "CP1", evse: int = 1, minutes: int = 10) -> ReservationRequest:
    return ReservationRequest(station, evse, "TAG1", T0 + timedelta(minutes=minutes))


async def test_a_reservation_is_created_pending_and_read_back_as_saved(store: SqlStore) -> None:
    book = SqlReservations(store.db)
    r = await book.create(replace(_req(), connector_type="cType2"), T0)
    assert r.status is Status.PENDING and r.id >= 1
    assert await book.get(r.id) == r
    active = rules.answered(r, "Accepted", T0)
    assert await book.save(active, was=(Status.PENDING,))
    assert await book.get(r.id) == active
    assert not await book.save(rules.answered(r, "Occupied", T0), was=(Status.PENDING,))  # lost the race
    assert (await book.get(r.id)) == active
    assert await book.get(r.id + 1000) is None


async def test_the_listing_is_newest_first_filtered_and_paged(store: SqlStore) -> None:
    book = SqlReservations(store.db)
    a = await book.create(_req("CP1"), T0)
    b = await book.create(_req("CP2"), T0)
    c = await book.create(_req("CP1", evse=2), T0)
    await book.save(rules.answered(b, "Rejected", T0), was=OPEN)
    assert [r.id for r in await book.list_reservations()] == [c.id, b.id, a.id]
    assert [r.id for r in await book.list_reservations(station_id="CP1")] == [c.id, a.id]
    assert [r.id for r in await book.list_reservations(open=True)] == [c.id, a.id]
    assert [r.id for r in await book.list_reservations(open=False)] == [b.id]
    first = await book.list_reservations(limit=2)
    assert [r.id for r in await book.list_reservations(limit=2, before_id=first[-1].id)] == [a.id]


async def test_due_lists_open_reservations_past_their_expiry_soonest_first(store: SqlStore) -> None:
    book = SqlReservations(store.db)
    late = await book.create(_req(minutes=20), T0)
    soon = await book.create(_req(evse=2, minutes=5), T0)
    ended = await book.create(_req(evse=3, minutes=1), T0)
    await book.save(rules.answered(ended, "Faulted", T0), was=OPEN)
    assert await book.due(T0 + timedelta(minutes=4)) == []
    assert [r.id for r in await book.due(T0 + timedelta(minutes=30))] == [soon.id, late.id]


async def test_a_used_reservation_marks_its_transaction(store: SqlStore) -> None:
    tx, _ = await store.start_transaction("CP1", evse_id=1, connector_id=1, id_tag="TAG1", meter_start_wh=0.0,
                                          ts=T0)
    book = SqlReservations(store.db)
    r = rules.answered(await book.create(_req(), T0), "Accepted", T0)
    await book.save(r, was=(Status.PENDING,))
    used = rules.consumed(r, "CP1", tx.tx_id, T0 + timedelta(minutes=1))
    assert used is not None
    assert await book.save(used, was=OPEN)
    stored = await store.get_transaction("CP1", tx.tx_id)
    assert stored is not None and stored.reservation_id == r.id
    [listed] = await store.list_transactions(station_id="CP1")
    assert listed.reservation_id == r.id
    assert (await book.get(r.id)) == used
