"""The station event write-behind buffer, over an in-memory store we wrote."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from csms.core.events import Event, StationReported
from csms.core.station_events import EventQuery, SignedMeterValue, StationEvent, StationEventLog

T0 = datetime(2026, 12, 1, tzinfo=UTC)


class MemoryEvents:
    """Keeps what it is given; ``fail`` makes the next write raise."""

    def __init__(self) -> None:
        self.events: list[StationEvent] = []
        self.signed: list[SignedMeterValue] = []
        self.fail = False

    async def save_station_events(self, events: Sequence[StationEvent]) -> list[int]:
        if self.fail:
            raise ConnectionError("database down")
        first = len(self.events) + 1
        ids = list(range(first, first + len(events)))
        self.events += [StationEvent(i, e.station_id, e.at, e.station_time, e.type, e.data)
                        for i, e in zip(ids, events, strict=True)]
        return ids

    async def list_station_events(self, query: EventQuery) -> list[StationEvent]:
        return [e for e in reversed(self.events) if e.station_id == query.station_id][: query.limit]

    async def prune_station_events(self, before: datetime) -> int:
        kept = [e for e in self.events if e.at >= before]
        pruned, self.events = len(self.events) - len(kept), kept
        return pruned

    async def save_signed_meter_values(self, values: Sequence[SignedMeterValue]) -> None:
        if self.fail:
            raise ConnectionError("database down")
        self.signed += values

    async def list_signed_meter_values(self, station_id: str, tx_id: str) -> list[SignedMeterValue]:
        return [v for v in self.signed if (v.station_id, v.tx_id) == (station_id, tx_id)]


class Ticks:
    def __init__(self) -> None:
        self.t = T0

    def __call__(self) -> datetime:
        self.t += timedelta(seconds=1)
        return self.t


async def test_events_are_published_with_their_ids_only_once_stored() -> None:
    store, published = MemoryEvents(), list[Event]()
    log = StationEventLog(store, published.append, Ticks())
    log.record("CS-1", "FirmwareStatusNotification", {"status": "Installed"}, None)
    log.record("CS-1", "StatusNotification", {"status": "Available"}, T0)
    assert published == [] and store.events == []
    await log.flush()
    assert [(e.id, e.type, e.at) for e in store.events] == [
        (1, "FirmwareStatusNotification", T0 + timedelta(seconds=1)),
        (2, "StatusNotification", T0 + timedelta(seconds=2)),
    ]
    reported = [p for p in published if isinstance(p, StationReported)]
    assert [(p.record_id, p.action, p.station_time, p.ts) for p in reported] == [
        (1, "FirmwareStatusNotification", None, T0 + timedelta(seconds=1)),
        (2, "StatusNotification", T0, T0 + timedelta(seconds=2)),
    ]
    assert log.counts == {"FirmwareStatusNotification": 1, "StatusNotification": 1}


async def test_a_failed_flush_keeps_the_batch_in_order_for_the_next() -> None:
    store = MemoryEvents()
    log = StationEventLog(store, lambda _e: None, Ticks())
    log.record("CS-1", "NotifyEvent", {"n": 1}, None)
    log.record_signed([SignedMeterValue("CS-1", "7", T0, None, None, None, "SignedData", None, None, "x")])
    store.fail = True
    with pytest.raises(ConnectionError):
        await log.flush()
    log.record("CS-1", "NotifyEvent", {"n": 2}, None)
    store.fail = False
    await log.flush()
    assert [e.data["n"] for e in store.events] == [1, 2] and len(store.signed) == 1
    assert log.pending == 0 and log.counts == {"NotifyEvent": 2}


async def test_a_full_buffer_drops_new_events_counts_them_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    store = MemoryEvents()
    log = StationEventLog(store, lambda _e: None, Ticks(), max_pending=3)
    with caplog.at_level(logging.WARNING, logger="csms.core.station_events"):
        for n in range(5):
            log.record("CS-1", "StatusNotification", {"n": n}, None)
    assert log.dropped == 2 and "station event buffer full" in caplog.text
    await log.flush()
    assert [e.data["n"] for e in store.events] == [0, 1, 2]
    log.record("CS-1", "StatusNotification", {"n": 5}, None)  # room again after the flush
    await log.flush()
    assert [e.data["n"] for e in store.events] == [0, 1, 2, 5] and log.dropped == 2
