"""The rules of a transaction's life, as pure functions (no database, no event loop).

2.0.1: ``apply_event`` takes the current state of a transaction (or None) and one
``TransactionEventRecord`` and returns the new state and what happened: created, ended now,
or a replay of the last event. Irregularities are kept as flags on the transaction:

- ``start_missing``: the first event seen was not ``Started`` (cleared by a late ``Started``);
- ``seq_gap`` / ``seq_out_of_order``: a seqNo skipped ahead / came after a later one;
- ``meter_start_estimated``: no start register, the first reading stands in for it;
- ``meter_stop_missing`` / ``meter_backwards``: no end register / it is below the start one;
- ``offline``: the station sent an event it had queued while offline (an event that creates
  the transaction sets it only if it also ends it, as the store always did).

1.6: the natural key a StartTransaction is deduplicated on, and the stop of a known
transaction (replay; ``meter_backwards``, ``stop_before_start``) or of an unknown one (an
orphan, ``unknown_transaction``).
The store reads the state, calls these, and persists what they decided.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from csms.core.model import Transaction
from csms.core.ports import StopResult, TransactionEventRecord
from ocppj.versions import OcppVersion

START_MISSING = "start_missing"
SEQ_GAP = "seq_gap"
SEQ_OUT_OF_ORDER = "seq_out_of_order"
METER_START_ESTIMATED = "meter_start_estimated"
METER_STOP_MISSING = "meter_stop_missing"
METER_BACKWARDS = "meter_backwards"
OFFLINE = "offline"
STOP_BEFORE_START = "stop_before_start"
UNKNOWN_TRANSACTION = "unknown_transaction"

_V201 = OcppVersion.V201


@dataclass(frozen=True, slots=True)
class TransactionState:
    """A transaction as the rules see it: the record, its latest energy register, the store's key.

    ``ref`` is opaque here (the store's row key; 0 until stored).
    """

    transaction: Transaction
    meter_last_wh: float | None = None
    ref: int = 0


class Applied(NamedTuple):
    """What one 2.0.1 event did (a NamedTuple: one is built per event on the hot path)."""

    state: TransactionState
    created: bool
    ended_now: bool
    replay: bool


_applied = tuple.__new__  # builds an ``Applied`` without NamedTuple's Python-level ``__new__``


def _utc(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _add(flags: tuple[str, ...], flag: str) -> tuple[str, ...]:
    return flags if flag in flags else (*flags, flag)


def extends(state: TransactionState, r: TransactionEventRecord) -> bool:
    """An ``Updated`` event after the last one of an open transaction: it changes only the
    sequence, meter, flag, id-tag and EVSE fields (the store's cheap path)."""
    tx = state.transaction
    last = tx.last_seq_no
    return r.event_type == "Updated" and tx.stopped_at is None and (last is None or r.seq_no > last)


def apply_event(current: TransactionState | None, r: TransactionEventRecord) -> Applied:
    """The transaction after event ``r``; ``current`` None: the event creates it."""
    if current is None:
        return _open(r)
    tx = current.transaction
    last = tx.last_seq_no
    if last == r.seq_no:  # a repeat of the last event (an older seqNo may be one too: the store knows)
        return Applied(current, False, False, True)
    flags = tx.flags
    seq_no = last
    if last is not None and r.seq_no != last + 1:
        flags = _add(flags, SEQ_GAP if r.seq_no > last + 1 else SEQ_OUT_OF_ORDER)
    if last is None or r.seq_no > last:
        seq_no = r.seq_no
    started_at, meter_start, meter_last = tx.started_at, tx.meter_start_wh, current.meter_last_wh
    meter = r.meter_wh
    if r.event_type == "Started":
        started_at = r.ts
        if START_MISSING in flags:
            flags = tuple(f for f in flags if f != START_MISSING)
        if meter is not None:
            meter_start = meter
    id_tag = tx.id_tag if tx.id_tag is not None else r.id_tag
    if meter is not None:
        meter_last = meter
        if tx.meter_start_wh is None and r.event_type != "Started":
            meter_start = meter
            flags = _add(flags, METER_START_ESTIMATED)
    evse_id, connector_id = tx.evse_id, tx.connector_id
    if r.evse_id and not evse_id:
        evse_id, connector_id = r.evse_id, r.connector_id
    if r.offline:
        flags = _add(flags, OFFLINE)
    stopped_at, meter_stop, stop_reason = tx.stopped_at, tx.meter_stop_wh, tx.stop_reason
    ended_now = r.event_type == "Ended" and stopped_at is None
    if ended_now:
        stopped_at, stop_reason = r.ts, r.stopped_reason
        meter_stop = meter if meter is not None else meter_last
        flags = _stop_flags(flags, meter_start, meter_stop)
    # positional, in field order: a third cheaper than keywords (one per applied event)
    new = Transaction(
        tx.station_id, tx.tx_id, evse_id, connector_id, id_tag, started_at, stopped_at, meter_start,
        meter_stop, stop_reason, tx.protocol, seq_no, flags,
    )
    return _applied(Applied, (TransactionState(new, meter_last, current.ref), False, ended_now, False))


def _open(r: TransactionEventRecord) -> Applied:
    """The transaction an event creates (also without a ``Started`` event: flagged)."""
    flags: tuple[str, ...] = () if r.event_type == "Started" else (START_MISSING,)
    stopped_at, stop_reason, meter_stop = None, None, None
    ended = r.event_type == "Ended"
    if ended:
        if r.offline:
            flags = _add(flags, OFFLINE)
        stopped_at, stop_reason, meter_stop = r.ts, r.stopped_reason, r.meter_wh
        flags = _stop_flags(flags, r.meter_wh, meter_stop)
    tx = Transaction(
        r.station_id, r.tx_id, r.evse_id, r.connector_id, r.id_tag, _utc(r.ts), stopped_at, r.meter_wh,
        meter_stop, stop_reason, _V201, r.seq_no, flags,
    )
    return Applied(TransactionState(tx, r.meter_wh), True, ended, False)


def _stop_flags(flags: tuple[str, ...], start: float | None, stop: float | None) -> tuple[str, ...]:
    if stop is None:
        return _add(flags, METER_STOP_MISSING)
    if start is not None and stop < start:
        return _add(flags, METER_BACKWARDS)
    return flags


# --- 1.6 ---------------------------------------------------------------------------------
def start_key(
    station_id: str, connector_id: int, id_tag: str | None, ts: datetime, meter_start_wh: float | None
) -> str:
    """The natural key of a 1.6 StartTransaction: a message with the same key is a replay."""
    return f"{station_id}|{connector_id}|{id_tag}|{ts.astimezone(UTC).isoformat()}|{meter_start_wh}"


def stop(tx: Transaction, *, ts: datetime, meter_stop_wh: float | None, reason: str | None) -> StopResult:
    """A 1.6 StopTransaction of a known transaction; a stopped one answers as a replay."""
    if tx.stopped_at is not None:
        return StopResult(tx, replay=True, orphan=False)
    flags = tx.flags
    if meter_stop_wh is not None and tx.meter_start_wh is not None and meter_stop_wh < tx.meter_start_wh:
        flags = _add(flags, METER_BACKWARDS)
    if tx.started_at is not None and ts < tx.started_at:
        flags = _add(flags, STOP_BEFORE_START)
    new = Transaction(
        tx.station_id, tx.tx_id, tx.evse_id, tx.connector_id, tx.id_tag, tx.started_at, ts,
        tx.meter_start_wh, meter_stop_wh, reason, tx.protocol, tx.last_seq_no, flags,
    )
    return StopResult(new, replay=False, orphan=False)


def orphan_id(tx_id: str, ts: datetime) -> str:
    """The id an unknown transaction's stop is kept under (a replay of that stop finds it)."""
    return f"{tx_id}~{ts.strftime('%Y%m%dT%H%M%S')}"


def orphan_stop(
    station_id: str, tx_id: str, *, ts: datetime, meter_stop_wh: float | None, reason: str | None,
    id_tag: str | None,
) -> Transaction:
    """The record of a 1.6 stop whose transaction is unknown (flagged, kept for the operator)."""
    return Transaction(
        station_id, orphan_id(tx_id, ts), 0, 0, id_tag, None, ts, None, meter_stop_wh, reason,
        OcppVersion.V16, None, (UNKNOWN_TRANSACTION,),
    )
