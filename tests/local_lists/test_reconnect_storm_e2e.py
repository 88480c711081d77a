"""A reconnect storm against the real CSMS: 200 virtual chargers over real WebSockets lose their
connections at once and come back; the local-list worker reads the registry once per batch (the
real store's reads counted by a subclass) and every station ends in sync."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from csms.app import running
from csms.core.events import StationConnected
from csms.core.model import IdTag
from csms.local_lists.plugin import local_lists_plugin
from csms.local_lists.rules import Policy
from csms.local_lists.service import LocalListService
from csms.store.engine import Database
from csms.store.local_lists import SqlLocalLists
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from tests.conftest import make_settings
from tests.local_lists.test_local_lists_e2e import seed_tags, station_charger

pytestmark = pytest.mark.e2e

STATIONS = 200


class CountedLists(SqlLocalLists):
    """The real local-list store, counting its registry reads."""

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self.reads = 0

    async def list_tags(self, **kwargs: Any) -> list[tuple[IdTag, str | None]]:
        self.reads += 1
        return await super().list_tags(**kwargs)


@contextlib.asynccontextmanager
async def fleet(chargers: list[VirtualCharger]) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(c.run()) for c in chargers]
    try:
        yield
    finally:
        for c in chargers:
            c.stop()
        await asyncio.wait(tasks, timeout=30)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def poll(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 60.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await probe():
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.1)


async def test_200_stations_reconnecting_read_the_registry_once_per_batch_and_end_in_sync(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, local_lists={"connect_check_s": 0.2, "reconcile_s": 0})
    async with running(settings, plugins=[local_lists_plugin]) as app:
        service = app.parts.local_lists
        assert isinstance(service, LocalListService) and app.store is not None
        lists = service.store = CountedLists(app.store.db)
        await seed_tags(app, 100)
        await service.put_policy(Policy("", None))
        ids = [f"STORM{i:03d}" for i in range(STATIONS)]
        chargers = [station_charger(app, OcppVersion.V16, sid) for sid in ids]
        connected: set[str] = set()
        app.bus.subscribe(lambda ev: connected.add(ev.station_id), StationConnected)

        def synced_since(at: datetime) -> Callable[[], Awaitable[bool]]:
            async def probe() -> bool:
                states = await service.states(limit=1000)
                return len(states) == STATIONS and all(
                    s.in_sync and s.version == 1 and s.synced_at is not None and s.synced_at >= at
                    for s in states)
            return probe

        async def settled() -> bool:  # no station waits, and none came due for a second
            before = service.batches
            await asyncio.sleep(1.0)
            return service.waiting == 0 and service.batches == before

        async with fleet(chargers):
            await poll(synced_since(datetime.fromtimestamp(0, UTC)), "every station's first list")
            await poll(settled, "the worker to settle")
            reads, batches = lists.reads, service.batches
            connected.clear()
            dropped_at = datetime.now(UTC)
            for charger in chargers:  # every connection lost at once: they all come back within a second
                charger.inject("drop")

            async def all_back() -> bool:
                return connected == set(ids)

            await poll(all_back, "the reconnections")
            await poll(synced_since(dropped_at), "every station found current again")
            await poll(settled, "the worker to settle")
        storm_reads, storm_batches = lists.reads - reads, service.batches - batches
        assert storm_reads == storm_batches  # one registry read per batch
        assert 1 <= storm_batches <= STATIONS // 10, storm_batches  # the reconnections share batches
        assert all(c.local_list.version == 1 for c in chargers)  # found current: nothing sent again
