"""Alarms with several core nodes: alarm services over one store, as each node runs one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.alarms.service import AlarmService
from csms.core.alarms import Kind, Thresholds
from csms.core.events import Event, StatusChanged
from csms.core.service import LiveStation
from csms.store.sql import SqlStore

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "shared.sqlite3"), synchronous="NORMAL")
    try:
        yield s
    finally:
        await s.close()


def node(store: SqlStore, clock: FakeClock, live: dict[str, LiveStation]) -> AlarmService:
    published = list[Event]()
    limits = Thresholds(offline_after_s=900)
    service = AlarmService(store.alarms, live, clock, limits, publish=published.append)
    service.shared = True
    service.since = T0 - timedelta(days=1)
    return service


async def applied(service: AlarmService) -> int:
    """Apply what ``on_event`` queued, as the worker does."""
    n = 0
    while not service._queue.empty():
        decision = service._queue.get_nowait()
        await service.apply(decision)
        service._queued.pop(decision.key, None)
        n += 1
    return n


def status(value: str) -> StatusChanged:
    return StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status=value)


async def test_an_alarm_raised_on_one_node_is_cleared_on_another_and_the_evaluator_keeps_it(
    store: SqlStore,
) -> None:
    clock = FakeClock()
    evaluator = node(store, clock, {})  # started before CP1 was registered: not in its memory
    serving = node(store, clock, {"CP1": LiveStation("CP1", last_seen_at=T0)})
    await store.upsert_station("CP1")
    await store.save_seen({"CP1": T0})

    serving.on_event(status("Faulted"))
    assert await applied(serving) == 1
    await evaluator.refresh(evaluating=True)
    assert evaluator.tick() == []  # a registered station's alarm stays; CP1 was seen lately

    clock.t = T0 + timedelta(seconds=901)  # CP1 silent, served by nobody
    await evaluator.refresh(evaluating=True)
    [offline] = evaluator.tick()
    assert offline.key.kind is Kind.STATION_OFFLINE and await evaluator.apply(offline) is not None

    back = node(store, clock, {"CP1": LiveStation("CP1", last_seen_at=clock.now())})  # reconnected here
    await back.refresh(evaluating=False)
    back.on_event(status("Available"))
    assert await applied(back) == 1
    assert [a.kind for a in await store.alarms.list_alarms(active=True)] == [Kind.STATION_OFFLINE]

    await store.save_seen({"CP1": clock.now()})  # the serving node's flush
    await evaluator.refresh(evaluating=True)
    [clear] = evaluator.tick()
    assert await evaluator.apply(clear) is not None
    assert await store.alarms.list_alarms(active=True) == []
