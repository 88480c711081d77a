"""The service over a recording station port and fixed groups: bounded concurrency, boots,
reconnects, and failed calls kept as such."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from csms.core.events import StationBooted, StationConnected
from csms.core.model import StationInfo
from csms.desired_config.ports import Answer
from csms.desired_config.rules import DesiredItem, DesiredSet, KeyResult, Reading, ResultStatus
from csms.desired_config.service import DesiredConfigService
from csms.store.desired_config import SqlDesiredConfig
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 5, 1, tzinfo=UTC)


class RecordingStations:
    """Connected 1.6 stations that accept everything (``refuse``: never answer), one call at a time each."""

    def __init__(self, connected: Sequence[str]) -> None:
        self.connected = set(connected)
        self.sent: list[tuple[str, list[str]]] = []
        self.in_flight = 0
        self.peak = 0
        self.refuse: set[str] = set()

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return OcppVersion.V16 if station_id in self.connected else None

    async def apply(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Answer]:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        await asyncio.sleep(0.05)
        self.in_flight -= 1
        self.sent.append((station_id, [i.key for i in items]))
        if station_id in self.refuse:
            return {i.key: (ResultStatus.FAILED, "timeout") for i in items}
        return {i.key: (ResultStatus.ACCEPTED, None) for i in items}

    async def read(
        self, station_id: str, version: OcppVersion, items: Sequence[DesiredItem]
    ) -> dict[str, Reading]:
        return {}


class Groups:
    def __init__(self, members: dict[str, list[str]]) -> None:
        self._members = members

    async def groups_of(self, station_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        return {s: tuple(g for g, m in self._members.items() if s in m) for s in station_ids}

    async def members(self, group: str) -> list[str]:
        return sorted(self._members.get(group, []))


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlDesiredConfig]:
    s = await SqlStore.open(str(tmp_path / "s.sqlite3"))
    try:
        yield SqlDesiredConfig(s.db)
    finally:
        await s.close()


def service(store: SqlDesiredConfig, stations: RecordingStations, members: dict[str, list[str]],
            **kw: float) -> DesiredConfigService:
    return DesiredConfigService(store, stations, Groups(members), FixedClock(),
                                protocol_of_registered=lambda _: None, **kw)  # type: ignore[arg-type]


async def test_a_change_reaches_every_connected_member_at_most_n_at_a_time(store: SqlDesiredConfig) -> None:
    ids = [f"S{i:02}" for i in range(40)]
    stations = RecordingStations(ids[:30])  # ten are offline
    svc = service(store, stations, {"g": ids}, concurrency=4)
    _, created, applying = await svc.put(DesiredSet("g", 0, {"HeartbeatInterval": "300"}))
    assert (created, applying) == (True, 30)
    await svc.idle()
    assert sorted(s for s, _ in stations.sent) == ids[:30]
    assert 1 < stations.peak <= 4  # in parallel, never more than the bound
    # the same set again: everything is applied, nothing is sent
    stations.sent.clear()
    await svc.put(DesiredSet("g", 0, {"HeartbeatInterval": "300"}))
    await svc.idle()
    assert stations.sent == []


async def test_failed_calls_are_kept_and_retried_on_the_next_change(store: SqlDesiredConfig) -> None:
    stations = RecordingStations(["A"])
    stations.refuse.add("A")
    svc = service(store, stations, {"g": ["A"]})
    await svc.put(DesiredSet("g", 0, {"K": "1"}))
    await svc.idle()
    kept = (await store.results(["A"]))["A"]["K"]
    assert (kept.status, kept.detail) == (ResultStatus.FAILED, "timeout")
    stations.refuse.clear()
    await svc.put(DesiredSet("g", 0, {"K": "1", "L": "2"}))
    await svc.idle()
    assert stations.sent[-1] == ("A", ["K", "L"])
    assert (await svc.group_status("g", after=None, limit=10))[0].counts["applied"] == 2
    # a key no longer desired loses its kept answer at the next application
    await svc.put(DesiredSet("g", 0, {"L": "3"}))
    await svc.idle()
    assert {k: r.value for k, r in (await store.results(["A"]))["A"].items()} == {"L": "3"}


async def test_a_boot_resends_everything_and_a_connect_followed_by_a_boot_sends_once(
    store: SqlDesiredConfig
) -> None:
    stations = RecordingStations(["A"])
    svc = service(store, stations, {"g": ["A"]}, boot_delay_s=0.05)
    await svc.put(DesiredSet("g", 0, {"K": "1"}))
    await svc.idle()
    stations.sent.clear()
    info = StationInfo(vendor="V", model="M")
    svc.on_event(StationConnected(station_id="A", protocol=OcppVersion.V16))
    svc.on_event(StationBooted(station_id="A", info=info, accepted=True))
    await svc.idle()
    assert stations.sent == [("A", ["K"])]  # the boot's: the connect's gave way to it
    svc.on_event(StationConnected(station_id="A", protocol=OcppVersion.V16))  # a reconnect: all applied
    await svc.idle()
    assert stations.sent == [("A", ["K"])]


async def test_a_station_whose_boot_was_refused_is_not_called_until_a_boot_is_accepted(
    store: SqlDesiredConfig
) -> None:
    stations = RecordingStations(["A"])
    svc = service(store, stations, {"g": ["A"]}, boot_delay_s=0.02)
    info = StationInfo(vendor="V", model="M")
    svc.on_event(StationConnected(station_id="A", protocol=OcppVersion.V16))
    svc.on_event(StationBooted(station_id="A", info=info, accepted=False))
    await svc.put(DesiredSet("g", 0, {"K": "1"}))  # a change meanwhile
    await svc.idle()
    svc.on_event(StationConnected(station_id="A", protocol=OcppVersion.V16))  # reconnects, still refused
    await svc.idle()
    assert await svc.apply_to("A", at_boot=True) == []
    assert stations.sent == []
    svc.on_event(StationBooted(station_id="A", info=info, accepted=True))
    await svc.idle()
    assert stations.sent == [("A", ["K"])]


class CountingStore(SqlDesiredConfig):
    """Counts the reads of kept answers."""

    reads = 0

    async def results(self, station_ids: Iterable[str]) -> dict[str, dict[str, KeyResult]]:
        self.reads += 1
        return await super().results(station_ids)


async def test_without_any_set_boots_and_reconnects_read_nothing(store: SqlDesiredConfig) -> None:
    counting = CountingStore(store._db)
    stations = RecordingStations(["A"])
    svc = service(counting, stations, {"g": ["A"]}, boot_delay_s=0.01)
    svc.on_event(StationBooted(station_id="A", info=StationInfo(vendor="V", model="M"), accepted=True))
    svc.on_event(StationConnected(station_id="B", protocol=OcppVersion.V16))
    await svc.idle()
    assert await svc.apply_to("A", at_boot=False) == []
    assert counting.reads == 0 and stations.sent == []
