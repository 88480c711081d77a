"""Last seen, online and registry removals in ``ChargingService``."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import cast

from csms.core.events import ClockOffsetMeasured, Event
from csms.core.model import Station
from csms.core.ports import Store
from csms.core.service import ChargingService, ServiceSettings
from ocppj.versions import OcppVersion

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class MemoryStore:
    """The part of ``Store`` these tests reach."""

    def __init__(self) -> None:
        self.stations = {"CP1": Station("CP1"), "CP2": Station("CP2")}
        self.seen: dict[str, datetime] = {}
        self.seen_writes = 0

    async def save_seen(self, seen: Mapping[str, datetime]) -> None:
        self.seen_writes += 1
        self.seen.update(seen)

    async def list_stations(self) -> list[Station]:
        return list(self.stations.values())

    async def station_profiles(self) -> dict[str, int]:
        return {sid: st.security_profile for sid, st in self.stations.items()}


def _service(
    store: MemoryStore, clock: FixedClock, published: list[Event], wall: list[float]
) -> ChargingService:
    return ChargingService(
        cast(Store, store), published.append, clock,
        ServiceSettings(heartbeat_interval_s=10, offline_after_heartbeats=3), wall_s=lambda: wall[0],
    )


def test_traffic_moves_last_seen_and_one_flush_writes_it_once_per_station() -> None:
    store, clock, wall = MemoryStore(), FixedClock(), [T0.timestamp()]
    service = _service(store, clock, [], wall)
    live = service.connected("CP1", OcppVersion.V16)
    asyncio.run(service.flush())
    for i in range(100):  # frames: a float store each
        live.touch(T0.timestamp() + 20 + i * 0.1)
    wall[0] = T0.timestamp() + 40
    assert service.online(live)
    writes = store.seen_writes
    asyncio.run(service.flush())
    assert store.seen_writes == writes + 1
    assert store.seen["CP1"] == T0 + timedelta(seconds=29.9)
    assert live.last_seen() == T0 + timedelta(seconds=29.9)
    asyncio.run(service.flush())  # nothing new: nothing written
    assert store.seen_writes == writes + 1
    wall[0] = T0.timestamp() + 29.9 + 30  # silent for three heartbeat intervals
    assert not service.online(live)
    service.disconnected("CP1")
    wall[0] = T0.timestamp() + 30
    assert not service.online(live)


def test_stations_removed_from_the_store_by_another_process_are_forgotten_and_returned() -> None:
    store, clock = MemoryStore(), FixedClock()
    service = _service(store, clock, [], [T0.timestamp()])
    service.connected("CP1", OcppVersion.V16)
    service.connected("CP2", OcppVersion.V201)
    del store.stations["CP2"]
    assert asyncio.run(service.deregistered()) == ["CP2"]
    assert set(service.live) == {"CP1"}
    assert asyncio.run(service.deregistered()) == []


def test_station_timestamps_measure_its_clock_offset_and_a_change_is_published() -> None:
    store, clock, published = MemoryStore(), FixedClock(), cast(list[Event], [])
    service = _service(store, clock, published, [T0.timestamp()])
    service.connected("CP1", OcppVersion.V16)
    for i in range(3):
        clock.at = T0 + timedelta(seconds=i)
        service.status("CP1", 1, 1, "Available", None, clock.at + timedelta(hours=2))
    offsets = [e for e in published if isinstance(e, ClockOffsetMeasured)]
    assert [(e.station_id, e.offset_s) for e in offsets] == [("CP1", 7200.0)]
    assert service.clock_offsets.offset_s("CP1") == 7200.0
    service.status("CP1", 1, 1, "Charging", None, None)  # no timestamp: no sample
    assert len([e for e in published if isinstance(e, ClockOffsetMeasured)]) == 1
