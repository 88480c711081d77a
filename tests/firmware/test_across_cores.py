"""Firmware campaigns with two core nodes: two services over one database, one of them scheduling."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.bus import Bus
from csms.cluster.events import ClusterBus
from csms.core.events import Event, StationBooted, StationReported
from csms.core.model import StationInfo
from csms.core.targets import Targets
from csms.firmware.campaign import CampaignSpec, CampaignState, FirmwareRequest, LiveStation, StationState
from csms.firmware.files import DownloadTokens, FirmwareBlobs
from csms.firmware.service import WATCHED, Conflict, FirmwareService, firmware_news
from csms.store.firmware import SqlFirmware
from csms.store.sql import SqlStore

T0 = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.at = T0

    def now(self) -> datetime:
        return self.at


class Sender:
    def __init__(self) -> None:
        self.sent: list[tuple[str, int]] = []

    async def send(self, charger_id: str, request: FirmwareRequest) -> tuple[bool, str | None]:
        self.sent.append((charger_id, request.request_id))
        return True, None


class Resolver:
    async def resolve(self, targets: Targets) -> list[str]:
        return sorted(targets.stations)


def _live(charger_id: str) -> LiveStation:
    return LiveStation(True, "1.0.0")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "shared.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


def _node(store: SqlStore, tmp_path: Path, clock: Clock, sender: Sender) -> FirmwareService:
    blobs = FirmwareBlobs(tmp_path / "fw", 1000)
    service = FirmwareService(SqlFirmware(store.db), blobs, DownloadTokens("k"), sender, clock, _live,
                              Resolver(), tick_s=0.01)
    service.public_base_url = "http://csms.example"
    return service


def _status(station_id: str, status: str, request_id: int) -> StationReported:
    return StationReported(station_id=station_id, action="FirmwareStatusNotification",
                           data={"status": status, "requestId": request_id})


async def _round(leader: FirmwareService) -> None:
    """One scheduling round of the elected node, its sends answered."""
    await leader.lead(True)
    for order in leader.tick(leader.clock.now()):
        leader._send_later(order)
    for task in list(leader._tasks):
        await task
    await leader.flush()


async def test_a_campaign_made_and_paused_through_the_other_node_is_scheduled_by_the_elected_one(
    store: SqlStore, tmp_path: Path
) -> None:
    clock, sender = Clock(), Sender()
    leader, other = _node(store, tmp_path, clock, sender), _node(store, tmp_path, clock, Sender())
    await other.lead(False)
    spec = CampaignSpec(version="2.0.0", location="https://fw.example/2.0.0.bin", wave_size=1)
    made = await other.create(spec, Targets(stations=("A", "B")))
    assert other.campaigns == {}  # the other node keeps nothing: the elected one schedules

    await _round(leader)
    assert sender.sent == [("A", made.id * 1000 + 1)]
    await other.transition(made.id, "pause")  # written to the store by the other node only
    await _round(leader)
    assert leader.campaigns[made.id].state is CampaignState.PAUSED
    await other.transition(made.id, "resume")
    await _round(leader)
    assert leader.campaigns[made.id].state is CampaignState.RUNNING

    # A's messages reach the elected node (relayed from the core serving A); progress is stored
    leader.on_event(_status("A", "Installed", made.id * 1000 + 1))
    leader.on_event(StationBooted(station_id="A", info=StationInfo(vendor="v", model="m",
                                                                   firmware_version="2.0.0"), accepted=True))
    await _round(leader)
    seen = await other.get(made.id)
    assert seen is not None
    assert seen.stations["A"].state is StationState.INSTALLED
    assert seen.stations["B"].state is StationState.UPDATING  # wave 2 began
    assert sender.sent[-1] == ("B", made.id * 1000 + 1)

    with pytest.raises(Conflict):  # the other node checks overlaps against the store
        await other.create(spec, Targets(stations=("B",)))


async def test_a_node_taking_over_reads_the_campaigns_and_the_old_one_writes_nothing_more(
    store: SqlStore, tmp_path: Path
) -> None:
    clock = Clock()
    first, second = _node(store, tmp_path, clock, Sender()), _node(store, tmp_path, clock, Sender())
    await second.lead(False)
    spec = CampaignSpec(version="2.0.0", location="https://fw.example/2.0.0.bin", wave_size=1)
    made = await first.create(spec, Targets(stations=("A", "B")))
    await _round(first)
    first.on_event(_status("A", "Downloading", made.id * 1000 + 1))
    await first.flush()

    await first.lead(False)  # lease lost: its memory goes, a late event changes nothing
    first.on_event(_status("A", "DownloadFailed", made.id * 1000 + 1))
    await first.stop()
    clock.at = T0 + timedelta(seconds=5)
    await second.lead(True)
    taken = second.campaigns[made.id]
    assert taken.stations["A"].state is StationState.UPDATING
    assert taken.stations["A"].last_status == "Downloading"
    second.on_event(_status("A", "Installing", made.id * 1000 + 1))
    await _round(second)
    stored = await SqlFirmware(store.db).load(made.id)
    assert stored is not None and stored.stations["A"].last_status == "Installing"


def test_only_firmware_news_of_the_reported_messages_travel_between_cores() -> None:
    bus, relayed, got = Bus(), list[Event](), list[Event]()
    cluster = ClusterBus(bus)
    cluster.subscribe(got.append, *WATCHED, where=firmware_news)
    cluster.relay_to(relayed.append)
    news = _status("A", "Downloaded", 1)
    noise = StationReported(station_id="A", action="StatusNotification", data={"status": "Available"})
    bus.publish(news)
    bus.publish(noise)
    assert relayed == [news]
    assert got == [news, noise]  # this core's own events all reach the handler, as on the bus
    cluster.deliver(noise)  # another core's event the subscriber does not want
    cluster.deliver(news)
    assert got == [news, noise, news]


async def test_a_resume_being_written_is_not_undone_by_the_leaders_look_at_the_store(
    store: SqlStore, tmp_path: Path,
) -> None:
    """The leader adopts other nodes' transitions from the store each tick; a state it reads while
    this node's own resume is still being written is stale and must not pause the campaign again."""
    import asyncio
    import contextlib

    clock, sender = Clock(), Sender()
    node = _node(store, tmp_path, clock, sender)
    spec = CampaignSpec(version="2.0.0", location="https://fw.example/2.0.0.bin", wave_size=1)
    campaign = await node.create(spec, Targets(stations=("CP1", "CP2")))
    await node.transition(campaign.id, "pause")
    db = node.store._db
    writing, release = asyncio.Event(), asyncio.Event()

    class HeldWrites:  # the real database; its next write waits until the leader looked
        def __getattr__(self, name: str) -> object:
            return getattr(db, name)

        @contextlib.asynccontextmanager
        async def write(self) -> AsyncIterator[object]:
            writing.set()
            await release.wait()
            async with db.write() as conn:
                yield conn

    node.store._db = HeldWrites()  # type: ignore[assignment]
    resuming = asyncio.create_task(node.transition(campaign.id, "resume"))
    await writing.wait()
    await node.lead(True)  # the leader's tick: the store still says paused
    release.set()
    resumed = await resuming
    assert resumed.state is CampaignState.RUNNING
    node.store._db = db
    await node.lead(True)  # the next tick reads the written state: nothing to undo
    assert node.campaigns[campaign.id].state is CampaignState.RUNNING
