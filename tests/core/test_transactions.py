"""The transaction rules, without a database or an event loop."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone

import pytest

from csms.core.model import Transaction
from csms.core.ports import TransactionEventRecord
from csms.core.transactions import (
    TransactionState,
    apply_event,
    extends,
    orphan_id,
    orphan_stop,
    start_key,
    stop,
)
from ocppj.versions import OcppVersion

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def event(kind: str, seq: int, meter: float | None = None, **kw: object) -> TransactionEventRecord:
    base: dict[str, object] = dict(
        station_id="S1", tx_id="X", event_type=kind, seq_no=seq, ts=T0 + timedelta(minutes=seq),
        trigger_reason="MeterValuePeriodic", evse_id=1, connector_id=1, id_tag=None, meter_wh=meter,
        stopped_reason=None, offline=False,
    )
    base.update(kw)
    return TransactionEventRecord(**base)  # type: ignore[arg-type]


def run(*events: TransactionEventRecord) -> tuple[TransactionState, list[tuple[bool, bool, bool]]]:
    """Apply the events in turn from nothing: the last state, and (created, ended_now, replay) each."""
    state: TransactionState | None = None
    outcomes = []
    for r in events:
        applied = apply_event(state, r)
        state = applied.state
        outcomes.append((applied.created, applied.ended_now, applied.replay))
    assert state is not None
    return state, outcomes


@dataclass(frozen=True)
class Case:
    name: str
    events: tuple[TransactionEventRecord, ...]
    flags: tuple[str, ...] = ()
    expect: dict[str, object] = field(default_factory=dict)  # Transaction fields
    outcomes: tuple[tuple[bool, bool, bool], ...] | None = None


CASES = [
    Case("a clean session has no flags",
         (event("Started", 0, 1000.0, id_tag="TAG"), event("Updated", 1, 1500.0), event("Ended", 2, 2000.0,
                                                                                     stopped_reason="Local")),
         expect=dict(meter_start_wh=1000.0, meter_stop_wh=2000.0, last_seq_no=2, id_tag="TAG",
                     started_at=T0, stopped_at=T0 + timedelta(minutes=2), stop_reason="Local"),
         outcomes=((True, False, False), (False, False, False), (False, True, False))),
    Case("a skipped seqNo is a gap",
         (event("Started", 0, 1000.0), event("Updated", 3, 1100.0)),
         flags=("seq_gap",), expect=dict(last_seq_no=3)),
    Case("an older seqNo after a newer one is out of order and keeps the last",
         (event("Started", 0, 1000.0), event("Updated", 3, 1100.0), event("Updated", 2, 1050.0)),
         flags=("seq_gap", "seq_out_of_order"), expect=dict(last_seq_no=3)),
    Case("the last seqNo again is a replay that changes nothing",
         (event("Started", 0, 1000.0), event("Updated", 1, 1500.0), event("Updated", 1, 9999.0)),
         expect=dict(last_seq_no=1),
         outcomes=((True, False, False), (False, False, False), (False, False, True))),
    Case("Ended twice ends once",
         (event("Started", 0, 1000.0), event("Ended", 1, 2000.0, stopped_reason="Local"),
          event("Ended", 2, 2500.0, stopped_reason="Remote")),
         expect=dict(meter_stop_wh=2000.0, stop_reason="Local", stopped_at=T0 + timedelta(minutes=1)),
         outcomes=((True, False, False), (False, True, False), (False, False, False))),
    Case("an end register below the start one is flagged",
         (event("Started", 0, 1000.0), event("Ended", 1, 900.0)),
         flags=("meter_backwards",), expect=dict(meter_stop_wh=900.0)),
    Case("an end without any register is flagged",
         (event("Started", 0), event("Ended", 1)), flags=("meter_stop_missing",),
         expect=dict(meter_start_wh=None, meter_stop_wh=None)),
    Case("an end without a register takes the latest one",
         (event("Started", 0, 1000.0), event("Updated", 1, 1400.0), event("Ended", 2)),
         expect=dict(meter_stop_wh=1400.0)),
    Case("the first reading stands in for a missing start register",
         (event("Started", 0), event("Updated", 1, 1200.0)),
         flags=("meter_start_estimated",), expect=dict(meter_start_wh=1200.0)),
    Case("a first event other than Started is flagged",
         (event("Updated", 4, 1200.0),), flags=("start_missing",),
         expect=dict(meter_start_wh=1200.0, last_seq_no=4, started_at=T0 + timedelta(minutes=4))),
    Case("a late Started clears start_missing and sets the start",
         (event("Updated", 1, 1200.0), event("Started", 0, 1000.0)),
         flags=("seq_out_of_order",), expect=dict(meter_start_wh=1000.0, started_at=T0, last_seq_no=1)),
    Case("an Ended that creates the transaction is started and ended at once",
         (event("Ended", 4, 50.0, offline=True, stopped_reason="Remote"),),
         flags=("start_missing", "offline"),
         expect=dict(started_at=T0 + timedelta(minutes=4), stopped_at=T0 + timedelta(minutes=4),
                     meter_start_wh=50.0, meter_stop_wh=50.0, stop_reason="Remote"),
         outcomes=((True, True, False),)),
    Case("a queued offline event is flagged",
         (event("Started", 0, 1000.0), event("Updated", 1, 1100.0, offline=True)), flags=("offline",)),
    Case("the first id token and EVSE known stay",
         (event("Started", 0, 1000.0, evse_id=0, connector_id=0), event("Updated", 1, id_tag="A", evse_id=2,
                                                                          connector_id=1),
          event("Updated", 2, id_tag="B", evse_id=3, connector_id=1)),
         expect=dict(id_tag="A", evse_id=2, connector_id=1)),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_transaction_rules(case: Case) -> None:
    state, outcomes = run(*case.events)
    tx = state.transaction
    assert tx.flags == case.flags
    for name, value in case.expect.items():
        assert getattr(tx, name) == value, name
    if case.outcomes is not None:
        assert tuple(outcomes) == case.outcomes
    assert tx.protocol is OcppVersion.V201 and tx.station_id == "S1" and tx.tx_id == "X"


def test_the_latest_register_is_kept_and_the_store_reference_carried() -> None:
    state, _ = run(event("Started", 0, 1000.0))
    state = replace(state, ref=42)
    after = apply_event(state, event("Updated", 1, 1300.0)).state
    assert after.meter_last_wh == 1300.0 and after.ref == 42
    assert apply_event(after, event("Updated", 2)).state.meter_last_wh == 1300.0


def test_a_created_transaction_starts_in_utc() -> None:
    local = datetime(2026, 11, 29, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    state = apply_event(None, event("Started", 0, ts=local)).state
    assert state.transaction.started_at == local and state.transaction.started_at.tzinfo is UTC
    assert state.ref == 0


def test_only_a_later_updated_event_of_an_open_transaction_extends_it() -> None:
    state, _ = run(event("Started", 0, 1000.0), event("Updated", 1))
    assert extends(state, event("Updated", 2)) and extends(state, event("Updated", 5))
    assert not extends(state, event("Updated", 1)) and not extends(state, event("Ended", 2))
    ended, _ = run(event("Started", 0), event("Ended", 1))
    assert not extends(ended, event("Updated", 2))


# --- 1.6 ----------------------------------------------------------------------------------
def v16(**kw: object) -> Transaction:
    base: dict[str, object] = dict(
        station_id="S1", tx_id="7", evse_id=1, connector_id=1, id_tag="T", started_at=T0,
        meter_start_wh=900.0,
    )
    base.update(kw)
    return Transaction(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(("tx", "ts", "meter", "flags"), [
    (v16(), T0 + timedelta(hours=1), 1500.0, ()),
    (v16(), T0 + timedelta(hours=1), 800.0, ("meter_backwards",)),
    (v16(), T0 - timedelta(seconds=1), 1500.0, ("stop_before_start",)),
    (v16(flags=("auth_blocked",)), T0 - timedelta(seconds=1), 1.0,
     ("auth_blocked", "meter_backwards", "stop_before_start")),
    (v16(meter_start_wh=None, started_at=None), T0, None, ()),
], ids=["clean", "meter backwards", "stop before start", "both, after earlier flags", "nothing known"])
def test_a_v16_stop_flags_what_does_not_add_up(
    tx: Transaction, ts: datetime, meter: float | None, flags: tuple[str, ...]
) -> None:
    result = stop(tx, ts=ts, meter_stop_wh=meter, reason="Local")
    assert not result.replay and not result.orphan
    assert result.transaction == replace(tx, stopped_at=ts, meter_stop_wh=meter, stop_reason="Local",
                                         flags=flags)


def test_a_v16_stop_of_a_stopped_transaction_is_a_replay() -> None:
    done = v16(stopped_at=T0 + timedelta(hours=1), meter_stop_wh=1000.0, stop_reason="Local")
    result = stop(done, ts=T0 + timedelta(hours=2), meter_stop_wh=5.0, reason="Remote")
    assert result.replay and result.transaction is done


def test_a_v16_stop_of_an_unknown_transaction_is_kept_as_an_orphan() -> None:
    ts = T0 + timedelta(seconds=5)
    orphan = orphan_stop("S1", "4242", ts=ts, meter_stop_wh=3.0, reason="Other", id_tag="X")
    assert orphan.tx_id == orphan_id("4242", ts) == "4242~20261129T080005"
    assert orphan == Transaction("S1", orphan.tx_id, 0, 0, "X", None, ts, None, 3.0, "Other", OcppVersion.V16,
                                 None, ("unknown_transaction",))


def test_a_v16_start_key_is_the_same_for_the_same_instant_in_any_zone() -> None:
    local = T0.astimezone(timezone(timedelta(hours=2)))
    assert start_key("S1", 1, "T", T0, 5.0) == start_key("S1", 1, "T", local, 5.0)
    assert start_key("S1", 1, "T", T0, 5.0) != start_key("S1", 2, "T", T0, 5.0)
    assert start_key("S1", 1, "T", T0, 5.0) != start_key("S1", 1, "T", T0, 6.0)
