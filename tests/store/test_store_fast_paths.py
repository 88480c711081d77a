"""The cheap paths of the store: group commits, fixed SQL, credentials from memory.

What they must keep: every write committed before its caller returns, replays answered
alike within one batch and across batches, and credentials changes visible at once.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from csms.core.model import ConnectorState, StationInfo, Transaction
from csms.core.ports import TransactionEventRecord
from csms.errors import StoreUnavailable
from csms.security.records import StationCredentials
from csms.store.credentials import CredentialsCache
from csms.store.direct import sqlite_ts
from csms.store.group_commit import GroupCommit
from csms.store.sql import SqlStore
from csms.store.transactions import _tx_map
from ocppj.versions import OcppVersion

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def updated(tx: str, seq: int, meter: float | None, station: str = "S1") -> TransactionEventRecord:
    return TransactionEventRecord(
        station_id=station, tx_id=tx, event_type="Updated", seq_no=seq, ts=T0 + timedelta(minutes=seq),
        trigger_reason="MeterValuePeriodic", evse_id=1, connector_id=1, id_tag=None, meter_wh=meter,
        stopped_reason=None, offline=False,
    )


def started(tx: str, station: str = "S1") -> TransactionEventRecord:
    return TransactionEventRecord(
        station_id=station, tx_id=tx, event_type="Started", seq_no=0, ts=T0, trigger_reason="Authorized",
        evse_id=1, connector_id=1, id_tag="TAG", meter_wh=1000.0, stopped_reason=None, offline=False,
    )


# --- credentials --------------------------------------------------------------------------
async def test_credentials_changes_show_at_once(store: SqlStore) -> None:
    await store.upsert_station("S1", security_profile=1, password_hash="h1")
    assert await store.get_credentials("S1") == StationCredentials("S1", 1, "h1", None, None)
    await store.upsert_station("S1", password_hash="h2")
    assert (await store.get_credentials("S1")) == StationCredentials("S1", 1, "h2", None, None)
    await store.record_boot("S1", OcppVersion.V16, StationInfo("V", "M", "SN-1", "FW"), T0)
    assert (await store.get_credentials("S1")) == StationCredentials("S1", 1, "h2", None, "SN-1")
    await store.set_pending_password("S1", "h3")
    assert (await store.get_credentials("S1")) == StationCredentials("S1", 1, "h2", "h3", "SN-1")
    await store.finish_password_rotation("S1", accepted=True)
    assert (await store.get_credentials("S1")) == StationCredentials("S1", 1, "h3", None, "SN-1")
    assert await store.delete_station("S1")
    assert await store.get_credentials("S1") is None
    await store.upsert_station("S1")
    assert (await store.get_credentials("S1")) == StationCredentials("S1", 0, None, None, None)


async def test_credentials_of_a_station_registered_by_another_process_are_found(tmp_path: Path) -> None:
    db = str(tmp_path / "s.sqlite3")
    server, cli = await SqlStore.open(db), await SqlStore.open(db)
    try:
        await server.upsert_station("A")
        assert await server.get_credentials("A") is not None  # the snapshot is loaded now
        await cli.upsert_station("B", security_profile=2, password_hash="hb")
        assert await server.get_credentials("B") == StationCredentials("B", 2, "hb", None, None)
    finally:
        await cli.close()
        await server.close()


async def test_credentials_snapshot_expires_and_skips_what_was_written_while_loading() -> None:
    now = [0.0]
    db = {"A": StationCredentials("A", 0), "B": StationCredentials("B", 0)}
    gate = asyncio.Event()

    async def load_all(_known: object) -> dict[str, StationCredentials]:
        snapshot = dict(db)
        await gate.wait()
        return snapshot

    async def load_one(station_id: str) -> StationCredentials | None:
        return db.get(station_id)

    cache = CredentialsCache(load_all, load_one, ttl_s=10.0, clock=lambda: now[0])
    first = asyncio.create_task(cache.get("A"))
    await asyncio.sleep(0)
    db["A"] = StationCredentials("A", 1, "new")  # written (and committed) while the snapshot loads
    cache.forget("A")
    gate.set()
    assert await first == StationCredentials("A", 1, "new")
    db["B"] = StationCredentials("B", 3)  # another process: visible once the snapshot expires
    assert await cache.get("B") == StationCredentials("B", 0)
    now[0] = 11.0
    assert await cache.get("B") == StationCredentials("B", 3)


# --- 1.6 starts and stops -----------------------------------------------------------------
async def test_replayed_starts_and_stops_in_one_batch_get_one_row_and_one_answer(store: SqlStore) -> None:
    ts = datetime(2026, 11, 29, 9, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    starts = await asyncio.gather(*[
        store.start_transaction("S1", evse_id=1, connector_id=c, id_tag="T", meter_start_wh=5.0, ts=ts)
        for c in (1, 1, 2, 1)
    ])
    assert [created for _, created in starts] == [True, False, True, False]
    assert starts[0][0] == starts[1][0] == starts[3][0] and starts[2][0].tx_id != starts[0][0].tx_id
    tx = starts[0][0]
    assert tx.started_at == ts and tx.started_at.tzinfo is UTC and tx.meter_start_wh == 5.0
    stops = await asyncio.gather(*[
        store.stop_transaction("S1", tx.tx_id, meter_stop_wh=m, ts=ts + timedelta(hours=1), reason="Local",
                               id_tag=None)
        for m in (50.0, 60.0)
    ])
    assert [s.replay for s in stops] == [False, True]
    assert stops[0].transaction == stops[1].transaction == await store.get_transaction("S1", tx.tx_id)
    assert stops[1].transaction.meter_stop_wh == 50.0 and stops[1].transaction.energy_wh == 45.0
    assert len(await store.list_transactions(station_id="S1")) == 2


async def test_a_stop_before_its_start_and_an_orphan_read_back_as_answered(store: SqlStore) -> None:
    tx, _ = await store.start_transaction("S1", evse_id=1, connector_id=1, id_tag="T", meter_start_wh=9.0,
                                          ts=T0)
    late, orphan = await asyncio.gather(
        store.stop_transaction("S1", tx.tx_id, meter_stop_wh=1.0, ts=T0 - timedelta(seconds=1),
                               reason=None, id_tag=None),
        store.stop_transaction("S1", "4242", meter_stop_wh=3.0, ts=T0, reason="Other", id_tag="X"),
    )
    assert set(late.transaction.flags) == {"meter_backwards", "stop_before_start"}
    assert orphan.orphan and not orphan.replay and orphan.transaction.flags == ("unknown_transaction",)
    assert late.transaction == await store.get_transaction("S1", tx.tx_id)
    assert orphan.transaction == await store.get_transaction("S1", orphan.transaction.tx_id)


# --- 2.0.1 group commit -------------------------------------------------------------------
async def test_events_of_one_transaction_in_one_batch_advance_in_turn(store: SqlStore) -> None:
    await store.apply_transaction_event(started("X"))
    await store.apply_transaction_event(started("Y", station="S2"))
    results = await asyncio.gather(
        store.apply_transaction_event(updated("X", 1, 1500.0)),
        store.apply_transaction_event(updated("X", 2, 2000.0)),
        store.apply_transaction_event(updated("Y", 1, None, station="S2")),
    )
    assert [r.transaction.last_seq_no for r in results] == [1, 2, 1]
    x = await store.get_transaction("S1", "X")
    assert x == results[1].transaction and x is not None and x.flags == () and x.meter_start_wh == 1000.0
    assert await store.get_transaction("S2", "Y") == results[2].transaction


async def test_a_replayed_seq_no_in_a_batch_falls_back_to_one_by_one(store: SqlStore) -> None:
    await store.apply_transaction_event(started("X"))
    first, again = await asyncio.gather(
        store.apply_transaction_event(updated("X", 1, 1500.0)),
        store.apply_transaction_event(updated("X", 1, 1500.0)),
    )
    assert not first.replay and again.replay
    assert first.transaction == again.transaction == await store.get_transaction("S1", "X")


async def test_events_the_cache_does_not_know_are_applied_alone_from_the_stored_row(store: SqlStore) -> None:
    await store.apply_transaction_event(started("X"))
    store.transactions._cache.clear()  # as after a restart
    r = await store.apply_transaction_event(updated("X", 1, 1500.0))
    assert not r.created and r.transaction == await store.get_transaction("S1", "X")
    assert r.transaction.started_at == T0 and r.transaction.last_seq_no == 1
    again = await store.apply_transaction_event(updated("X", 2, 1600.0))  # cached again: group commit
    assert again.transaction == await store.get_transaction("S1", "X") and again.transaction.last_seq_no == 2
    ended = await store.apply_transaction_event(TransactionEventRecord(
        station_id="S1", tx_id="Z", event_type="Ended", seq_no=4, ts=T0, trigger_reason="StopAuthorized",
        evse_id=1, connector_id=1, id_tag=None, meter_wh=50.0, stopped_reason="Remote", offline=True,
    ))
    assert ended.created and ended.ended_now and ended.transaction == await store.get_transaction("S1", "Z")
    assert set(ended.transaction.flags) == {"start_missing", "offline"} and ended.transaction.stopped_at == T0


def test_a_transaction_row_maps_field_by_field() -> None:
    row = {
        "pk": 7, "station_id": "S1", "tx_id": "X", "protocol": "ocpp2.0.1", "evse_id": 2, "connector_id": 3,
        "id_tag": "TAG", "started_at": T0, "stopped_at": T0 + timedelta(hours=1), "meter_start_wh": 10.0,
        "meter_stop_wh": 20.0, "meter_last_wh": 19.0, "stop_reason": "Local", "last_seq_no": 5,
        "flags": "offline,seq_gap",
    }
    assert _tx_map(row) == Transaction(
        station_id="S1", tx_id="X", evse_id=2, connector_id=3, id_tag="TAG", started_at=T0,
        stopped_at=T0 + timedelta(hours=1), meter_start_wh=10.0, meter_stop_wh=20.0, stop_reason="Local",
        protocol=OcppVersion.V201, last_seq_no=5, flags=("offline", "seq_gap"),
    )


# --- fixed SQL ----------------------------------------------------------------------------
_OFFSETS = st.builds(timezone, st.timedeltas(min_value=timedelta(hours=-23, minutes=-59),
                                             max_value=timedelta(hours=23, minutes=59)))


@given(st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31),
                    timezones=st.none() | st.just(UTC) | _OFFSETS))
def test_sqlite_ts_is_the_isoformat_of_the_naive_utc_time(dt: datetime) -> None:
    utc = dt.astimezone(UTC) if dt.utcoffset() else dt
    assert sqlite_ts(dt) == utc.replace(tzinfo=None).isoformat(" ", "microseconds")


# --- connectors ---------------------------------------------------------------------------
async def test_save_connectors_upserts_in_one_statement(store: SqlStore) -> None:
    later = T0 + timedelta(seconds=1)
    await store.upsert_station("S1")
    await store.save_connectors([("S1", ConnectorState(1, 1, "Available", None, None))])
    await store.save_connectors([
        ("S1", ConnectorState(1, 1, "Charging", None, T0)),
        ("S1", ConnectorState(1, 2, "Faulted", "GroundFailure", T0)),
        ("S1", ConnectorState(1, 1, "Finishing", None, later)),  # the later one of a key wins
    ])
    assert sorted((await store.load_connectors())["S1"], key=lambda c: c.connector_id) == [
        ConnectorState(1, 1, "Finishing", None, later), ConnectorState(1, 2, "Faulted", "GroundFailure", T0)
    ]
    await store.save_connectors([("GONE", ConnectorState(1, 1, "Charging", None, T0))])  # not registered
    assert "GONE" not in await store.load_connectors()


# --- GroupCommit --------------------------------------------------------------------------
async def test_group_commit_failure_reaches_every_waiter_and_the_writer_goes_on() -> None:
    calls: list[list[int]] = []

    async def apply(batch: list[int]) -> list[int]:
        calls.append(batch)
        if 0 in batch:
            raise StoreUnavailable("disk full")
        return [i * 2 for i in batch]

    gc: GroupCommit[int, int] = GroupCommit(apply)
    failed = await asyncio.gather(*[gc.submit(i) for i in range(3)], return_exceptions=True)
    assert all(isinstance(f, StoreUnavailable) for f in failed) and calls == [[0, 1, 2]]
    assert await asyncio.gather(gc.submit(4), gc.submit(5)) == [8, 10]
    await gc.close()


async def test_group_commit_takes_at_most_max_batch_items_in_order() -> None:
    calls: list[list[int]] = []

    async def apply(batch: list[int]) -> list[int]:
        calls.append(batch)
        return [i * 2 for i in batch]

    gc: GroupCommit[int, int] = GroupCommit(apply, max_batch=2)
    assert await asyncio.gather(*[gc.submit(i) for i in range(5)]) == [0, 2, 4, 6, 8]
    assert calls == [[0, 1], [2, 3], [4]]
    await gc.close()


async def test_group_commit_close_fails_whoever_waits_and_refuses_more() -> None:
    started_apply = asyncio.Event()

    async def apply(batch: list[int]) -> list[int]:
        started_apply.set()
        await asyncio.sleep(3600)
        return batch

    gc: GroupCommit[int, int] = GroupCommit(apply)
    in_flight = asyncio.create_task(gc.submit(1))
    await started_apply.wait()
    queued = asyncio.create_task(gc.submit(2))
    await asyncio.sleep(0)
    await gc.close()
    for task in (in_flight, queued):
        with pytest.raises(StoreUnavailable):
            await task
    with pytest.raises(StoreUnavailable):
        await gc.submit(3)


async def test_group_commit_lingers_only_while_submissions_come_fast() -> None:
    sizes: list[int] = []

    async def apply(batch: list[int]) -> list[int]:
        sizes.append(len(batch))
        return batch

    gc: GroupCommit[int, int] = GroupCommit(apply, linger_s=0.02, linger_below=4)

    async def paced(n: int, gap_s: float) -> None:
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(gc.submit(i)))
            await asyncio.sleep(gap_s)
        assert await asyncio.gather(*tasks) == list(range(n))

    await paced(3, 0.1)  # slow: every item alone, none waited for
    assert sizes == [1, 1, 1]
    sizes.clear()
    await paced(20, 0.002)  # fast: small batches wait for company
    assert max(sizes) > 1 and len(sizes) < 20
    await gc.close()


async def test_group_commit_does_not_keep_a_lone_caller_waiting() -> None:
    async def apply(batch: list[int]) -> list[int]:
        return batch

    gc: GroupCommit[int, int] = GroupCommit(apply, linger_s=0.05, linger_below=4)
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(20):  # back to back: submissions come fast, but only after the previous answer
        assert await gc.submit(i) == i
    assert loop.time() - start < 8 * 0.05  # a few lingers and probes at most, not 20
    await gc.close()
