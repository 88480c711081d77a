"""Transactions listed by start time in keyset pages, with a start-time range, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from csms.core.ports import TimeRange, TxKey, TxOrder
from csms.store.sql import SqlStore
from tests.store.test_store_contract import T0, record


async def _seed(store: SqlStore) -> None:
    """Twelve sessions on S1 and S2 starting every 10 minutes (T10 shares T03's start), a 1.6 one last."""
    for i in range(10):
        sid = "S1" if i % 2 else "S2"
        await store.apply_transaction_event(record(f"T{i:02}", 0, "Started", 10 * i, 0.0, station_id=sid))
    await store.apply_transaction_event(record("T10", 0, "Started", 30, 0.0, station_id="S1"))
    await store.start_transaction("S3", evse_id=1, connector_id=1, id_tag=None, meter_start_wh=0,
                                  ts=T0 + timedelta(minutes=200))


async def _pages(store: SqlStore, order: TxOrder, size: int, **kw: object) -> list[list[str]]:
    pages: list[list[str]] = []
    after: TxKey | None = None
    while True:
        txs = await store.list_transactions(order=order, after=after, limit=size, **kw)  # type: ignore[arg-type]
        if not txs:
            return pages
        pages.append([tx.tx_id for tx in txs])
        after = TxKey.of(txs[-1])


async def test_pages_by_start_time_cover_every_session_once_in_order(store: SqlStore) -> None:
    await _seed(store)
    every = await store.list_transactions()
    newest_first = await _pages(store, TxOrder.STARTED_DESC, 3)
    flat = [x for p in newest_first for x in p]
    assert sorted(flat) == sorted(tx.tx_id for tx in every) and len(flat) == 12
    assert [len(p) for p in newest_first] == [3, 3, 3, 3]
    starts = {tx.tx_id: tx.started_at for tx in every}
    assert [starts[x] for x in flat] == sorted((starts[x] for x in flat), reverse=True)
    oldest_first = [x for p in await _pages(store, TxOrder.STARTED_ASC, 5) for x in p]
    assert oldest_first == sorted(oldest_first, key=lambda x: (starts[x], x))
    assert flat[1] == "T09"  # the 1.6 session (ids the store assigns) started last


async def test_start_range_and_station_filter_page_together(store: SqlStore) -> None:
    await _seed(store)
    window = TimeRange(T0 + timedelta(minutes=20), T0 + timedelta(minutes=60))  # starts 20..50 min
    got = [x for p in await _pages(store, TxOrder.STARTED_DESC, 2, started=window) for x in p]
    assert got == ["T05", "T04", "T10", "T03", "T02"]
    s1 = [x for p in await _pages(store, TxOrder.STARTED_ASC, 2, started=window, station_id="S1") for x in p]
    assert s1 == ["T03", "T10", "T05"]


async def test_without_an_order_the_newest_received_come_first(store: SqlStore) -> None:
    await _seed(store)
    assert [tx.tx_id for tx in await store.list_transactions(limit=3)][1:] == ["T10", "T09"]
