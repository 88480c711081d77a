"""The local-list worker under a reconnect burst: one de-duplicated queue of stations, taken in
batches that each read the registry once, over the real SQLite store (its reads counted by a
subclass) and a station port that answers after a few milliseconds; and a slow station holding up
no later batch."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from csms.config import LocalListsConfig
from csms.core.events import StationConnected
from csms.core.model import IdTag
from csms.core.ports import SystemClock
from csms.local_lists.rules import Limits, Message, Policy, SendStatus
from csms.local_lists.service import LocalListService
from csms.store.engine import Database
from csms.store.local_lists import SqlLocalLists
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion
from tests.simulators.sim_support import wait_until

STATIONS = 200
CFG = LocalListsConfig(connect_check_s=0.0, concurrency=8, items_per_message=100, reconcile_s=0.0)


class CountedLists(SqlLocalLists):
    """The real local-list store, counting its registry reads."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    async def list_tags(self, **kwargs: Any) -> list[tuple[IdTag, str | None]]:
        self.reads += 1
        return await super().list_tags(**kwargs)


class SlowPort:
    """Stations that answer each call after ``delay_s``; counts the calls running at once."""

    def __init__(self, online: set[str], delay_s: float) -> None:
        self.online = online
        self.delay_s = delay_s
        self.running = self.most = 0
        self.sent: dict[str, int] = {}

    def connected(self, station_id: str) -> bool:
        return station_id in self.online

    async def _answer(self) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.running -= 1

    async def version(self, station_id: str) -> int:
        await self._answer()
        return 0

    async def limits(self, station_id: str, default_items: int) -> Limits:
        await self._answer()
        return Limits(100, None, 20)

    async def send(self, station_id: str, message: Message) -> SendStatus:
        await self._answer()
        self.sent[station_id] = self.sent.get(station_id, 0) + 1
        return SendStatus.ACCEPTED


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "lists.sqlite3"), synchronous="NORMAL")
    try:
        yield s
    finally:
        await s.close()


async def test_a_reconnect_burst_reads_the_registry_once_per_batch_and_every_station_ends_in_sync(
    store: SqlStore,
) -> None:
    for i in range(50):
        await store.local_lists.put_tag(IdTag(f"T{i:03d}"), None)
    await store.local_lists.put_policy(Policy("", None))
    lists = CountedLists(store.db)
    ids = [f"CP{i:03d}" for i in range(STATIONS)]
    port = SlowPort(set(ids), delay_s=0.01)

    async def no_groups(station_id: str) -> Sequence[str]:
        return ()

    service = LocalListService(lists, port, SystemClock(), CFG, groups_of=no_groups,
                               connected=lambda: ids, publish=lambda _ev: None)
    worker = asyncio.create_task(service.run())
    try:
        for wave in range(0, STATIONS, 10):  # 200 reconnections within about half a second
            for sid in ids[wave:wave + 10]:
                service.on_event(StationConnected(station_id=sid, protocol=OcppVersion.V16))
                if wave == 0:  # the first ones come twice (a reconnection and a boot): synced once
                    service.on_event(StationConnected(station_id=sid, protocol=OcppVersion.V16))
            await asyncio.sleep(0.025)

        async def all_in_sync() -> bool:
            states = await service.states(limit=1000)
            return len(states) == STATIONS and all(s.in_sync and s.version == 1 for s in states)

        deadline = asyncio.get_running_loop().time() + 30
        while not await all_in_sync():
            assert asyncio.get_running_loop().time() < deadline, "every station's list in sync"
            await asyncio.sleep(0.05)
        await wait_until(lambda: service.waiting == 0, what="the last batch")
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert port.sent == dict.fromkeys(ids, 1)  # one Full list each, none twice
    assert port.most <= CFG.concurrency
    assert lists.reads == service.batches  # one registry read per batch
    assert service.batches <= STATIONS // 20  # ... and batches merge the stations queued meanwhile


class OneSlowStation(SlowPort):
    """``slow`` answers each call after ``slow_s``; the others at once."""

    def __init__(self, online: set[str], slow: str, slow_s: float) -> None:
        super().__init__(online, 0.0)
        self.slow, self.slow_s = slow, slow_s

    async def version(self, station_id: str) -> int:
        await asyncio.sleep(self.slow_s if station_id == self.slow else 0.0)
        return 0


async def test_a_station_waiting_for_its_own_slow_sync_holds_up_no_later_batch(store: SqlStore) -> None:
    await store.local_lists.put_tag(IdTag("T1"), None)
    await store.local_lists.put_policy(Policy("", None))
    ids = ["SLOW", "A", "B"]
    port = OneSlowStation(set(ids), "SLOW", slow_s=3.0)

    async def no_groups(station_id: str) -> Sequence[str]:
        return ()

    service = LocalListService(store.local_lists, port, SystemClock(), CFG, groups_of=no_groups,
                               connected=lambda: ids, publish=lambda _ev: None)
    worker = asyncio.create_task(service.run())

    def connect(sid: str) -> None:
        service.on_event(StationConnected(station_id=sid, protocol=OcppVersion.V16))

    async def in_sync(sid: str) -> bool:
        state = await service.state(sid)
        return state is not None and state.in_sync

    try:
        connect("SLOW")  # its sync waits 3 s for the station's version
        await asyncio.sleep(0.5)
        connect("SLOW")  # again, with another station: this batch's SLOW waits for its first sync
        connect("A")
        await asyncio.sleep(0.5)
        connect("B")  # a later batch: it goes out although SLOW has not started its second sync
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 1.5
        while not (await in_sync("A") and await in_sync("B")):
            assert loop.time() < deadline, "A and B in sync while SLOW is still busy"
            await asyncio.sleep(0.05)
        assert not await in_sync("SLOW")
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
