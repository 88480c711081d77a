"""The alarm service over a real SQLite store, with a fake clock: offline tick, dedupe, announcements."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.alarms.service import AlarmService
from csms.core.alarms import Kind, State, Thresholds, decide
from csms.core.events import (
    AlarmChanged,
    CommandFailed,
    Event,
    SecurityEventReported,
    StationConnected,
    StationDisconnected,
    StatusChanged,
)
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


def fault(status: str, station_id: str = "CP1") -> StatusChanged:
    return StatusChanged(station_id=station_id, evse_id=1, connector_id=1, status=status)


async def changes(published: list[Event], count: int) -> list[str]:
    """The states of the ``AlarmChanged`` published, once ``count`` came (or after 2 s)."""
    for _ in range(200):
        if len([e for e in published if isinstance(e, AlarmChanged)]) >= count:
            break
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # and nothing more
    return [e.state for e in published if isinstance(e, AlarmChanged)]


@pytest.mark.parametrize("raised_first", [False, True])
async def test_events_within_one_store_write_are_all_applied_in_order(
    store: SqlStore, raised_first: bool
) -> None:
    clock, published = FakeClock(), list[Event]()
    service = service_of(store, clock, {"CP1": LiveStation("CP1")}, published)
    if raised_first:  # an active alarm: Available then Faulted must leave one (a new one) active
        [decision] = decide(fault("Faulted"), service.limits)
        assert await service.apply(decision) is not None
        sequence, expected = ["Available", "Faulted"], ["raised", "cleared", "raised"]
    else:  # no alarm: Faulted then Available must leave none
        sequence, expected = ["Faulted", "Available"], ["raised", "cleared"]
    worker = asyncio.create_task(service.run())
    try:
        for status in sequence:  # back to back: the book has not seen the first yet
            service.on_event(fault(status))
        assert await changes(published, len(expected)) == expected
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    active = await store.alarms.list_alarms(active=True)
    assert len(active) == int(raised_first) and list(service.book.active.values()) == active


async def test_a_refused_transition_is_retried_in_order_then_counted_as_lost(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock, published, waits, lost = FakeClock(), list[Event](), list[float](), list[int]()
    outage = {"left": 2}
    real_raise = store.alarms.raise_alarm

    async def flaky_raise(*args: object, **kwargs: object) -> object:
        if outage["left"] != 0:
            outage["left"] -= 1
            raise ConnectionError("database is down")
        return await real_raise(*args, **kwargs)  # type: ignore[arg-type]

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(0)

    monkeypatch.setattr(store.alarms, "raise_alarm", flaky_raise)
    service = AlarmService(store.alarms, {"CP1": LiveStation("CP1")}, clock, Thresholds(offline_after_s=900),
                           publish=published.append, on_lost=lambda: lost.append(1), sleep=sleep)
    worker = asyncio.create_task(service.run())
    try:
        service.on_event(fault("Faulted"))  # refused twice, stored on the third attempt
        service.on_event(fault("Available"))  # waits behind it
        assert await changes(published, 2) == ["raised", "cleared"]
        assert waits == [0.5, 1.0] and lost == []
        outage["left"] = -1  # down for good: given up after about a minute, counted
        service.on_event(SecurityEventReported(station_id="CP1", kind="FirmwareTamperDetected"))
        for _ in range(200):
            if lost:
                break
            await asyncio.sleep(0.01)
        assert lost == [1] and service.lost == 1 and service.book.active == {}
        assert 30 <= sum(waits[2:]) <= 60
        outage["left"] = 0  # back: the worker goes on
        service.on_event(fault("Faulted"))
        assert await changes(published, 3) == ["raised", "cleared", "raised"]
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)


async def test_a_removed_stations_alarms_are_cleared_on_the_tick_by_the_system(store: SqlStore) -> None:
    clock, published = FakeClock(), list[Event]()
    live = {"CP1": LiveStation("CP1"), "CP2": LiveStation("CP2")}
    service = service_of(store, clock, live, published)
    for ev in (fault("Faulted"), fault("Faulted", "CP2"),
               CommandFailed(station_id="CP1", action="Reset", reason="timeout")):  # ack-only
        for decision in decide(ev, service.limits):
            assert await service.apply(decision) is not None
    assert service.tick() == []
    del live["CP1"]  # ChargingService.forget: deregistered
    clock.advance(10)
    decisions = service.tick()
    assert sorted(d.key.kind.value for d in decisions) == ["command_unanswered", "connector_faulted"]
    for decision in decisions:
        cleared = await service.apply(decision)
        assert cleared is not None and cleared.cleared_at == clock.now()
        history = await service.history(cleared.id)
        assert [(h.action, h.actor) for h in history] == [(State.RAISED, "csms"), (State.CLEARED, "system")]
    assert [k.charger_id for k in service.book.active] == ["CP2"]
    assert [a.charger_id for a in await store.alarms.list_alarms(active=True)] == ["CP2"]
    assert service.tick() == []
