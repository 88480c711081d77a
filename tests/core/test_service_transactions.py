"""ChargingService.transaction_event: one call per 2.0.1 TransactionEvent, against an in-memory store."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import cast

from csms.core.events import ClockOffsetMeasured, Event, MeterSampled, TransactionEnded, TransactionStarted
from csms.core.model import AuthStatus, IdTag, MeterReading, SampledValue
from csms.core.ports import EventResult, Store, SystemClock, TransactionEventRecord
from csms.core.service import ChargingService, ServiceSettings
from csms.core.transactions import TransactionState, apply_event

T0 = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


class MemoryStore:
    """The two store methods a TransactionEvent needs, on the core's rules."""

    def __init__(self) -> None:
        self.transactions: dict[tuple[str, str], TransactionState] = {}
        self.tags = {"TAG": IdTag("TAG", AuthStatus.BLOCKED)}

    async def apply_transaction_event(self, r: TransactionEventRecord) -> EventResult:
        applied = apply_event(self.transactions.get((r.station_id, r.tx_id)), r)
        self.transactions[(r.station_id, r.tx_id)] = applied.state
        return EventResult(applied.state.transaction, applied.replay, applied.created, applied.ended_now)

    async def get_id_tag(self, id_tag: str) -> IdTag | None:
        return self.tags.get(id_tag)


def record(kind: str, seq: int, *, evse_id: int = 0, connector_id: int = 0) -> TransactionEventRecord:
    return TransactionEventRecord(
        station_id="S1", tx_id="X", event_type=kind, seq_no=seq, ts=T0 + timedelta(minutes=seq),
        trigger_reason="MeterValuePeriodic", evse_id=evse_id, connector_id=connector_id, id_tag=None,
        meter_wh=1000.0 + seq, stopped_reason=None, offline=False,
    )


def reading(minutes: int) -> MeterReading:
    return MeterReading(T0 + timedelta(minutes=minutes),
                        (SampledValue("Energy.Active.Import.Register", 1000.0 + minutes, "Wh"),))


def test_one_call_records_publishes_labels_samples_and_looks_the_token_up() -> None:
    published: list[Event] = []
    service = ChargingService(cast(Store, MemoryStore()), published.append, SystemClock(), ServiceSettings())

    async def scenario() -> None:
        result, auth = await service.transaction_event(record("Started", 0, evse_id=2, connector_id=1),
                                                       [reading(0)], id_token="TAG")
        assert result.created and auth is not None and auth.status is AuthStatus.BLOCKED
        # later events omit the EVSE: their samples are the transaction's
        result, auth = await service.transaction_event(record("Updated", 1), [reading(1)])
        assert not result.created and auth is None
        again, _ = await service.transaction_event(record("Updated", 1), [reading(1)])
        assert again.replay
        ended, _ = await service.transaction_event(record("Ended", 2), [reading(2)])
        assert ended.ended_now

    asyncio.run(scenario())
    offsets = [e for e in published if isinstance(e, ClockOffsetMeasured)]
    assert len(offsets) == 1  # the events' own times are far from now: the station's clock is off
    published = [e for e in published if not isinstance(e, ClockOffsetMeasured)]
    kinds = [type(e).__name__ for e in published]
    assert kinds == ["TransactionStarted", "MeterSampled", "MeterSampled", "TransactionEnded", "MeterSampled"]
    samples = [e.sample for e in published if isinstance(e, MeterSampled)]
    assert [(s.evse_id, s.connector_id, s.transaction_id) for s in samples] == [(2, 1, "X")] * 3
    assert isinstance(published[0], TransactionStarted) and isinstance(published[3], TransactionEnded)
    assert service.live_energy_wh(published[3].transaction) == 2.0
    assert ("S1", "X") not in service._meter_last  # an ended transaction's register is not kept
