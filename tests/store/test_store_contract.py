"""The same store contract on SQLite and on a private PostgreSQL cluster."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from csms.core.model import AuthStatus, ConnectorState, IdTag, StationInfo
from csms.core.ports import SystemClock, TransactionEventRecord
from csms.core.service import ChargingService, ServiceSettings
from csms.ocpp.v201.convert import reported_variables
from csms.store.engine import database_url
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def record(
    tx: str, seq: int, kind: str, minutes: int, meter: float | None, **kw: object
) -> TransactionEventRecord:
    base = dict(
        station_id="S1",
        tx_id=tx,
        event_type=kind,
        seq_no=seq,
        ts=T0 + timedelta(minutes=minutes),
        trigger_reason="Authorized",
        evse_id=1,
        connector_id=1,
        id_tag="TAG",
        meter_wh=meter,
        stopped_reason=None,
        offline=False,
    )
    base.update(kw)
    return TransactionEventRecord(**base)  # type: ignore[arg-type]


def test_database_url_accepts_paths_and_urls() -> None:
    assert database_url("x.db") == "sqlite+aiosqlite:///x.db"
    assert database_url("sqlite:///tmp/x.db") == "sqlite+aiosqlite:///tmp/x.db"
    assert database_url("postgresql://u@h:5/d") == "postgresql+asyncpg://u@h:5/d"


async def test_station_registration_boot_and_connectors_round_trip(store: SqlStore) -> None:
    await store.upsert_station("S1")
    await store.record_boot("S1", OcppVersion.V201, StationInfo("V", "M", "SN", "FW"), T0)
    await store.save_connectors([("S1", ConnectorState(1, 1, "Charging", None, T0))])
    await store.save_connectors([("S1", ConnectorState(1, 1, "Finishing", None, T0))])
    await store.save_seen({"S1": T0 + timedelta(seconds=5)})
    st = await store.get_station("S1")
    assert st is not None and st.protocol is OcppVersion.V201 and st.info == StationInfo("V", "M", "SN", "FW")
    assert st.last_seen_at == T0 + timedelta(seconds=5)
    assert (await store.load_connectors())["S1"] == [ConnectorState(1, 1, "Finishing", None, T0)]
    assert await store.delete_station("S1") and await store.get_station("S1") is None


async def test_device_variables_upsert_load_and_go_with_their_station(store: SqlStore) -> None:
    await store.upsert_station("S1")
    await store.upsert_station("S2")
    long_value = "x" * 2500  # the longest 2.0.1 attribute value
    await store.save_variables([("S1", "OCPPCommCtrlr/HeartbeatInterval/Actual", "300"),
                                ("S1", "SecurityCtrlr/Identity/Actual", long_value),
                                ("S2", "EVSE/1/Power/MaxSet", "22000")])
    await store.save_variables([("S1", "OCPPCommCtrlr/HeartbeatInterval/Actual", "60")])
    assert await store.load_variables() == {
        "S1": {"OCPPCommCtrlr/HeartbeatInterval/Actual": "60", "SecurityCtrlr/Identity/Actual": long_value},
        "S2": {"EVSE/1/Power/MaxSet": "22000"},
    }
    assert await store.delete_station("S1")
    assert await store.load_variables() == {"S2": {"EVSE/1/Power/MaxSet": "22000"}}
    await store.save_variables([("S1", "Late/Write/Actual", "1"), ("NEVER", "X/Y/Actual", "2")])
    assert await store.load_variables() == {"S2": {"EVSE/1/Power/MaxSet": "22000"}}  # no such stations


async def test_reported_variables_with_hostile_values_persist_and_a_deleted_station_stays_gone(
    store: SqlStore,
) -> None:
    """Through the service: a NUL byte (PostgreSQL text cannot hold one) and an over-long key
    must not block anyone's write-behind; a station deleted before the flush is not written."""
    for sid in ("S1", "S2"):
        await store.upsert_station(sid)
    service = ChargingService(store, lambda _e: None, SystemClock(), ServiceSettings())
    service.device_report("S1", reported_variables([
        {"component": {"name": "C"}, "variable": {"name": "Nul"}, "variableAttribute": [{"value": "a\x00b"}]},
        {"component": {"name": "C" * 50, "instance": "/" * 50},
         "variable": {"name": "/" * 50, "instance": "/" * 50},
         "variableAttribute": [{"value": "too long a key once escaped"}]},
    ]))
    service.device_report("S2", reported_variables([{"component": {"name": "C"}, "variable": {"name": "V"},
                                                     "variableAttribute": [{"value": "2"}]}]))
    service.status("S2", 1, 1, "Charging", None, T0)  # connector rows have no such guard in SQL
    service.forget("S2")
    assert await store.delete_station("S2")
    await service.flush()
    assert await store.load_variables() == {"S1": {"C/Nul/Actual": "a\ufffdb"}}
    assert "S2" not in await store.load_connectors() and "S2" not in service.live


async def test_id_tags_insert_replace_delete(store: SqlStore) -> None:
    assert await store.put_id_tag(IdTag("A", AuthStatus.ACCEPTED, T0, "P"))
    assert not await store.put_id_tag(IdTag("A", AuthStatus.BLOCKED))
    assert await store.get_id_tag("A") == IdTag("A", AuthStatus.BLOCKED, None, None)
    assert [t.id_tag for t in await store.list_id_tags()] == ["A"]
    assert await store.delete_id_tag("A") and not await store.delete_id_tag("A")


async def test_concurrent_duplicate_starts_create_one_transaction(store: SqlStore) -> None:
    results = await asyncio.gather(
        *[
            store.start_transaction("S1", evse_id=1, connector_id=1, id_tag="T", meter_start_wh=10.0, ts=T0)
            for _ in range(8)
        ]
    )
    assert len({tx.tx_id for tx, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    assert len(await store.list_transactions(station_id="S1")) == 1


async def test_stop_is_replay_safe_and_flags_meter_going_backwards(store: SqlStore) -> None:
    tx, _ = await store.start_transaction(
        "S1", evse_id=1, connector_id=1, id_tag="T", meter_start_wh=900.0, ts=T0
    )
    first = await store.stop_transaction(
        "S1", tx.tx_id, meter_stop_wh=100.0, ts=T0, reason="Local", id_tag=None
    )
    again = await store.stop_transaction(
        "S1", tx.tx_id, meter_stop_wh=555.0, ts=T0, reason="Other", id_tag=None
    )
    assert not first.replay and again.replay
    assert again.transaction.meter_stop_wh == 100.0 and "meter_backwards" in again.transaction.flags


async def test_unknown_stops_are_kept_separately_and_replays_deduplicated(store: SqlStore) -> None:
    a = await store.stop_transaction("S1", "-1", meter_stop_wh=1.0, ts=T0, reason=None, id_tag=None)
    b = await store.stop_transaction(
        "S1", "-1", meter_stop_wh=2.0, ts=T0 + timedelta(hours=1), reason=None, id_tag=None
    )
    a2 = await store.stop_transaction("S1", "-1", meter_stop_wh=1.0, ts=T0, reason=None, id_tag=None)
    assert a.orphan and b.orphan and a2.replay
    assert len(await store.list_transactions(station_id="S1")) == 2


async def test_transaction_events_dedupe_on_seq_and_compute_energy(store: SqlStore) -> None:
    r1 = await store.apply_transaction_event(record("X", 0, "Started", 0, 1000.0))
    r2 = await store.apply_transaction_event(record("X", 1, "Updated", 5, 3000.0))
    dup = await store.apply_transaction_event(record("X", 1, "Updated", 5, 3000.0))
    end = await store.apply_transaction_event(record("X", 3, "Ended", 9, None, stopped_reason="Local"))
    assert r1.created and not r2.created and dup.replay and end.ended_now
    tx = end.transaction
    assert tx.meter_stop_wh == 3000.0 and tx.energy_wh == 2000.0  # stop from the last register seen
    assert "seq_gap" in tx.flags and tx.stop_reason == "Local" and tx.last_seq_no == 3


async def test_an_older_seq_no_is_a_replay_when_stored_and_out_of_order_when_new(store: SqlStore) -> None:
    await store.apply_transaction_event(record("X", 0, "Started", 0, 1000.0))
    await store.apply_transaction_event(record("X", 1, "Updated", 1, 1100.0))
    await store.apply_transaction_event(record("X", 3, "Updated", 3, 1300.0))
    old = await store.apply_transaction_event(record("X", 1, "Updated", 1, 1100.0))  # stored: the unique key
    late = await store.apply_transaction_event(record("X", 2, "Updated", 2, 1200.0))  # never seen: applied
    assert old.replay and not late.replay
    assert old.transaction.flags == ("seq_gap",) and old.transaction.last_seq_no == 3
    assert late.transaction.flags == ("seq_gap", "seq_out_of_order") and late.transaction.last_seq_no == 3
    assert late.transaction == await store.get_transaction("S1", "X")
