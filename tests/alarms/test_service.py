"""The alarm service over a real SQLite store, with a fake clock: offline tick, dedupe, announcements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.alarms.service import AlarmService
from csms.core.alarms import Kind, State, Thresholds, decide
from csms.core.events import AlarmChanged, Event, StationConnected, StationDisconnected, StatusChanged
from csms.core.service import LiveStation
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "alarms.sqlite3"), synchronous="NORMAL")
    try:
        yield s
    finally:
        await s.close()


def service_of(store: SqlStore, clock: FakeClock, live: dict[str, LiveStation],
               published: list[Event]) -> AlarmService:
    return AlarmService(store.alarms, live, clock, Thresholds(offline_after_s=900), publish=published.append)


async def test_a_silent_station_goes_offline_on_the_tick_and_comes_back_when_seen(store: SqlStore) -> None:
    clock, published = FakeClock(), list[Event]()
    live = {"CP1": LiveStation("CP1", last_seen_at=T0 - timedelta(days=1)), "NEVER": LiveStation("NEVER")}
    service = service_of(store, clock, live, published)  # started now: CP1 gets 900 s to come back
    assert service.tick() == []
    clock.advance(900)
    assert service.tick() == []
    clock.advance(1)
    [decision] = service.tick()
    alarm = await service.apply(decision)
    assert alarm is not None and alarm.kind is Kind.STATION_OFFLINE and alarm.raised_at == clock.now()
    assert service.tick() == []  # already active
    live["CP1"].last_seen_at = clock.now()
    [clear] = service.tick()
    cleared = await service.apply(clear)
    assert cleared is not None and cleared.state is State.CLEARED
    assert [(e.kind, e.state) for e in published if isinstance(e, AlarmChanged)] == [
        ("station_offline", "raised"), ("station_offline", "cleared"),
    ]


async def test_a_disconnect_after_long_silence_raises_and_a_connect_clears(store: SqlStore) -> None:
    clock, published = FakeClock(), list[Event]()
    live = {"CP1": LiveStation("CP1", last_seen_at=T0)}
    service = service_of(store, clock, live, published)
    service.since = T0 - timedelta(days=1)  # running for a day
    worker = asyncio.create_task(service.run())
    try:
        clock.advance(1000)
        service.on_event(StationDisconnected(station_id="CP1", protocol=OcppVersion.V16))
        for _ in range(100):
            if service.book.active:
                break
            await asyncio.sleep(0.01)
        assert [a.kind for a in service.book.active.values()] == [Kind.STATION_OFFLINE]
        service.on_event(StationConnected(station_id="CP1", protocol=OcppVersion.V16))
        for _ in range(100):
            if not service.book.active:
                break
            await asyncio.sleep(0.01)
        assert service.book.active == {}
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_repeated_faults_make_one_alarm_and_a_reload_finds_it(store: SqlStore) -> None:
    clock, published = FakeClock(), list[Event]()
    service = service_of(store, clock, {}, published)
    worker = asyncio.create_task(service.run())
    try:
        for _ in range(5):
            service.on_event(StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status="Faulted"))
        for _ in range(100):
            if service.book.active:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    alarms = await store.alarms.list_alarms(active=False)
    assert len(alarms) == 1 and len([e for e in published if isinstance(e, AlarmChanged)]) == 1
    reloaded = service_of(store, clock, {}, [])
    await reloaded.load()
    assert list(reloaded.book.active.values()) == alarms


async def test_acknowledging_is_recorded_once_with_its_actor(store: SqlStore) -> None:
    clock, published = FakeClock(), list[Event]()
    service = service_of(store, clock, {}, published)
    fault = StatusChanged(station_id="CP1", evse_id=1, connector_id=2, status="Faulted")
    [decision] = decide(fault, service.limits)
    raised = await service.apply(decision)
    assert raised is not None
    clock.advance(30)
    acked = await service.acknowledge(raised.id, "operator")
    again = await service.acknowledge(raised.id, "someone else")
    assert acked is not None and acked == again and acked.acknowledged_at == clock.now()
    assert acked.state is State.ACKNOWLEDGED and acked.key in service.book.active
    assert await service.acknowledge(9999, "operator") is None
    history = await service.history(raised.id)
    assert [(h.action, h.actor) for h in history] == [
        (State.RAISED, "csms"), (State.ACKNOWLEDGED, "operator"),
    ]
    assert [e.state for e in published if isinstance(e, AlarmChanged)] == ["raised", "acknowledged"]
