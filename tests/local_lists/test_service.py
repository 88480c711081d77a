"""``LocalListService`` with a fake clock and a recording station port over a real SQLite store:
its tick decisions, and how a sync fails, records and recovers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.config import LocalListsConfig
from csms.core.events import Event, IdTagsChanged, LocalListSynced, StationBooted, StationConnected
from csms.core.model import AuthStatus, IdTag, StationInfo
from csms.errors import CallTimeout
from csms.local_lists.rules import Limits, Message, Policy, SendStatus, UpdateType
from csms.local_lists.service import LocalListService, SyncRequest
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CFG = LocalListsConfig(debounce_s=2.0, max_delay_s=10.0, connect_check_s=1.0, items_per_message=10,
                       reconcile_s=600.0)


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += timedelta(seconds=seconds)


class RecordingPort:
    """A station that answers from a script and records what it was sent."""

    def __init__(self) -> None:
        self.online = {"CP1", "CP2"}
        self.version_answer = 0
        self.limits_answer = Limits(10, None, 20)
        self.answers: list[SendStatus | Exception] = []  # per SendLocalList, in order; then Accepted
        self.sent: list[tuple[str, Message]] = []

    def connected(self, station_id: str) -> bool:
        return station_id in self.online

    async def version(self, station_id: str) -> int:
        return self.version_answer

    async def limits(self, station_id: str, default_items: int) -> Limits:
        return self.limits_answer

    async def send(self, station_id: str, message: Message) -> SendStatus:
        answer = self.answers.pop(0) if self.answers else SendStatus.ACCEPTED
        if isinstance(answer, Exception):
            raise answer
        self.sent.append((station_id, message))
        return answer


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "lists.sqlite3"), synchronous="NORMAL")
    try:
        yield s
    finally:
        await s.close()


def make(store: SqlStore, port: RecordingPort, clock: FakeClock, events: list[Event]) -> LocalListService:
    async def groups_of(station_id: str) -> Sequence[str]:
        return ("depot",) if station_id == "CP2" else ()

    return LocalListService(store.local_lists, port, clock, CFG, groups_of=groups_of,
                            connected=lambda: sorted(port.online), publish=events.append)


async def seed(store: SqlStore, n: int, group: str | None = "fleet") -> None:
    for i in range(n):
        await store.local_lists.put_tag(IdTag(f"T{i:03d}"), group)


def test_tick_checks_versions_after_connections_and_batches_tag_changes(store: SqlStore) -> None:
    clock, port = FakeClock(), RecordingPort()
    service = make(store, port, clock, [])
    info = StationInfo(vendor="Acme", model="AC")
    service.on_event(StationConnected(station_id="CP1", protocol=OcppVersion.V16))
    service.on_event(StationBooted(station_id="CP2", info=info, accepted=True))
    assert service.tick(clock.now()) == [SyncRequest("CP2", check_version=True)]
    clock.advance(1.0)
    assert service.tick(clock.now()) == [SyncRequest("CP1", check_version=True)]
    for _ in range(3):  # three quick changes
        service.on_event(IdTagsChanged(id_tags=("X",)))
        clock.advance(0.5)
    assert service.tick(clock.now()) == []
    clock.advance(2.0)
    assert service.tick(clock.now()) == [SyncRequest("CP1"), SyncRequest("CP2")]  # one round for the three
    assert service.tick(clock.now()) == []
    clock.advance(600.0)  # the periodic reconciliation
    assert service.tick(clock.now()) == [SyncRequest("CP1"), SyncRequest("CP2")]


async def test_sync_follows_the_policy_and_a_refusal_leaves_the_station_out_of_sync(store: SqlStore) -> None:
    clock, port, events = FakeClock(), RecordingPort(), list[Event]()
    service = make(store, port, clock, events)
    await seed(store, 25)
    await store.local_lists.put_tag(IdTag("D1", AuthStatus.BLOCKED), "depot-tags")
    assert (await service.sync(SyncRequest("CP1"))).reason == "no_policy" and port.sent == []

    await service.put_policy(Policy("", "fleet"))
    await service.put_policy(Policy("depot", "depot-tags"))
    outcome = await service.sync(SyncRequest("CP1", check_version=True))
    assert (outcome.ok, outcome.reason, outcome.update_type, outcome.messages, outcome.items) == (
        True, "first", "Full", 3, 25)
    assert [(m.update_type, m.version, len(m.changes)) for _, m in port.sent] == [
        (UpdateType.FULL, 1, 10), (UpdateType.DIFFERENTIAL, 2, 10), (UpdateType.DIFFERENTIAL, 3, 5)]
    depot = await service.sync(SyncRequest("CP2"))
    assert depot.items == 1 and port.sent[-1][1].changes[0].id_tag == "D1"

    # a differential refused mid-way: the chunks accepted before it are kept, the station is out of sync
    await seed(store, 40)  # 15 new tags: two differential messages
    port.answers = [SendStatus.ACCEPTED, SendStatus.VERSION_MISMATCH]
    failed = await service.sync(SyncRequest("CP1"))
    assert not failed.ok and "VersionMismatch" in failed.detail
    state = await service.state("CP1")
    assert state is not None and (state.version, state.in_sync, state.entries) == (4, False, 35)
    assert events[-1] == LocalListSynced(station_id="CP1", ok=False, detail=failed.detail,
                                         event_id=events[-1].event_id, ts=events[-1].ts)

    # the next sync is Full, whatever the size of the change
    retried = await service.sync(SyncRequest("CP1"))
    assert (retried.ok, retried.reason, retried.update_type) == (True, "not_in_sync", "Full")
    assert retried.version == 8  # four messages of ten after version 4
    assert isinstance(events[-1], LocalListSynced) and events[-1].ok


async def test_failures_of_every_kind_are_reported(store: SqlStore) -> None:
    clock, port, events = FakeClock(), RecordingPort(), list[Event]()
    service = make(store, port, clock, events)
    await seed(store, 5)
    await service.put_policy(Policy("", None))
    port.answers = [CallTimeout("no answer")]
    assert "CallTimeout" in (await service.sync(SyncRequest("CP1"))).detail
    port.version_answer = -1
    assert "does not support" in (await service.sync(SyncRequest("CP1", check_version=True))).detail
    port.version_answer, port.limits_answer = 0, Limits(10, 3, 20)
    service._limits.clear()  # a reconnection would forget them too
    assert "does not fit" in (await service.sync(SyncRequest("CP1"))).detail
    assert [e.ok for e in events if isinstance(e, LocalListSynced)] == [False, False, False]
    port.online.discard("CP1")
    gone = await service.sync(SyncRequest("CP1"))
    synced = [e for e in events if isinstance(e, LocalListSynced)]
    assert gone.reason == "not_connected" and len(synced) == 3  # nothing published for an absent station
    assert isinstance(events[0], IdTagsChanged) and events[0].id_tags == ()  # the policy: every core node


async def test_a_station_found_current_at_boot_is_confirmed_without_sending(store: SqlStore) -> None:
    clock, port, events = FakeClock(), RecordingPort(), list[Event]()
    service = make(store, port, clock, events)
    await seed(store, 3)
    await service.put_policy(Policy("", None))
    assert (await service.sync(SyncRequest("CP1"))).version == 1
    port.version_answer = 1
    sent = len(port.sent)
    outcome = await service.sync(SyncRequest("CP1", check_version=True))
    assert (outcome.ok, outcome.reason, len(port.sent)) == (True, "up_to_date", sent)
    port.version_answer = 7  # changed behind the CSMS's back
    outcome = await service.sync(SyncRequest("CP1", check_version=True))
    assert (outcome.reason, outcome.update_type, outcome.version) == ("version_mismatch", "Full", 8)


async def test_a_refused_station_gets_no_list_until_a_boot_is_accepted(store: SqlStore) -> None:
    clock, port, events = FakeClock(), RecordingPort(), list[Event]()
    service = make(store, port, clock, events)
    await seed(store, 3)
    await service.put_policy(Policy("", None))
    info = StationInfo(vendor="Acme", model="AC")
    service.on_event(StationConnected(station_id="CP1", protocol=OcppVersion.V16))
    service.on_event(StationBooted(station_id="CP1", info=info, accepted=False))
    clock.advance(1.0)
    assert service.tick(clock.now()) == []  # the connection's check is dropped
    service.on_event(IdTagsChanged(id_tags=("T000",)))
    clock.advance(600.0)
    assert service.tick(clock.now()) == [SyncRequest("CP2")]  # rounds leave it out
    refused = await service.sync(SyncRequest("CP1"))
    assert (refused.ok, refused.reason, port.sent) == (False, "not_accepted", [])
    service.on_event(StationBooted(station_id="CP1", info=info, accepted=True))
    assert service.tick(clock.now()) == [SyncRequest("CP1", check_version=True)]
    assert (await service.sync(SyncRequest("CP1", check_version=True))).ok and port.sent[0][0] == "CP1"
