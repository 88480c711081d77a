"""Station events and signed meter values in the store: pages, filters, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from csms.core.station_events import EventQuery, SignedMeterValue, StationEvent
from csms.store.sql import SqlStore
from tests.store.test_store_contract import T0


def event(n: int, kind: str = "StatusNotification", station: str = "CS-1") -> StationEvent:
    return StationEvent(None, station, T0 + timedelta(seconds=n), T0, kind, {"n": n, "nested": [{"x": None}]})


async def test_a_batch_gets_increasing_ids_in_its_order_and_reads_back_newest_first(store: SqlStore) -> None:
    ids = await store.save_station_events([event(n) for n in range(5)])
    assert ids == sorted(ids) and len(set(ids)) == 5
    got = await store.list_station_events(EventQuery("CS-1"))
    assert [e.id for e in got] == ids[::-1]
    assert got[-1] == StationEvent(ids[0], "CS-1", T0, T0, "StatusNotification", event(0).data)


async def test_type_since_and_station_filter_the_events(store: SqlStore) -> None:
    kinds = ["NotifyEvent" if n % 2 else "StatusNotification" for n in range(6)]
    await store.save_station_events([event(n, k) for n, k in enumerate(kinds)] + [event(9, station="CS-2")])
    notify = await store.list_station_events(EventQuery("CS-1", type="NotifyEvent"))
    assert [e.data["n"] for e in notify] == [5, 3, 1]
    recent = await store.list_station_events(EventQuery("CS-1", since=T0 + timedelta(seconds=4)))
    assert [e.data["n"] for e in recent] == [5, 4]
    assert [e.data["n"] for e in await store.list_station_events(EventQuery("CS-2"))] == [9]


async def test_paging_below_a_cursor_sees_every_event_once_while_new_ones_arrive(store: SqlStore) -> None:
    await store.save_station_events([event(n) for n in range(25)])
    seen: list[object] = []
    before: int | None = None
    while True:
        page = await store.list_station_events(EventQuery("CS-1", limit=7, before_id=before))
        await store.save_station_events([event(100 + len(seen))])  # newer than any page: not in this walk
        seen.extend(e.data["n"] for e in page)
        if len(page) < 7:
            break
        before = page[-1].id
    assert seen == list(range(24, -1, -1))


async def test_pruning_deletes_only_events_received_before_the_cutoff(store: SqlStore) -> None:
    await store.save_station_events([event(n) for n in range(10)])
    assert await store.prune_station_events(T0 + timedelta(seconds=4)) == 4
    assert {e.data["n"] for e in await store.list_station_events(EventQuery("CS-1"))} == set(range(4, 10))


async def test_signed_meter_values_come_back_with_their_transaction_in_order(store: SqlStore) -> None:
    values = [
        SignedMeterValue("CS-1", "tx-1", T0, T0 + timedelta(seconds=n), "Sample.Periodic",
                         "Energy.Active.Import.Register", "OCMF", "ECDSA-secp256r1-SHA256", "PUBKEY",
                         f"blob-{n}")
        for n in range(3)
    ]
    await asyncio.gather(store.save_signed_meter_values(values[:2]), store.save_signed_meter_values([]))
    await store.save_signed_meter_values(values[2:])
    await store.save_signed_meter_values([SignedMeterValue("CS-1", "tx-2", T0, None, None, None, "SignedData",
                                                           None, None, "other")])
    assert await store.list_signed_meter_values("CS-1", "tx-1") == values
    assert await store.list_signed_meter_values("CS-2", "tx-1") == []
