"""The display service collects a GetDisplayMessages request's reports: several with ``tbc``, only
its own request and station, and says when the last did not come in time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from csms.core.events import Event, StationReported
from csms.display.service import DisplayService
from csms.profiles.calls import RecordedCalls, VersionUnsupported
from csms.store.profiles import SqlOperatorCommands
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion


class FixedClock:
    def now(self) -> datetime:
        return datetime(2026, 12, 7, 8, 0, tzinfo=UTC)


class Station:
    """Answers GetDisplayMessages Accepted and then runs ``after`` (the reports it sends)."""

    def __init__(self, version: OcppVersion, after: Callable[[int], None]) -> None:
        self.version, self.after = version, after

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return self.version

    async def call(self, station_id: str, action: str, payload: dict[str, Any], *,
                   timeout: float | None = None) -> dict[str, Any]:
        asyncio.get_running_loop().call_soon(self.after, payload["requestId"])
        return {"status": "Accepted"}


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "d.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


def make(store: SqlStore, station: Station) -> DisplayService:
    handlers: list[Callable[[Event], None]] = []

    def subscribe(handler: Callable[[Event], None]) -> Callable[[], None]:
        handlers.append(handler)
        return handlers.clear

    svc = DisplayService(RecordedCalls(station, SqlOperatorCommands(store.db), FixedClock()), subscribe,
                         first_request_id=40)
    svc.attach()
    assert handlers == [svc.on_event]
    return svc


def report(station_id: str, request_id: int, ids: list[int], tbc: bool) -> StationReported:
    info = [{"id": i, "priority": "NormalCycle", "message": {"format": "UTF8", "content": f"m{i}"}}
            for i in ids]
    return StationReported(station_id=station_id, action="NotifyDisplayMessages",
                           data={"requestId": request_id, "tbc": tbc, "messageInfo": info})


async def test_reports_are_collected_until_the_last(store: SqlStore) -> None:
    svc: DisplayService

    def reports(request_id: int) -> None:
        svc.on_event(report("OTHER", request_id, [99], False))  # another station: not ours
        svc.on_event(report("CS1", request_id + 1, [98], False))  # another request
        svc.on_event(report("CS1", request_id, [1, 2], True))
        svc.on_event(report("CS1", request_id, [3], False))

    svc = make(store, Station(OcppVersion.V201, reports))
    got = await svc.get_messages("CS1", wait_s=2)
    assert got.request_id == 40 and got.complete is True
    assert [m["id"] for m in got.messages] == [1, 2, 3]
    svc.detach()


async def test_a_missing_last_report_leaves_the_answer_incomplete(store: SqlStore) -> None:
    svc: DisplayService

    def reports(request_id: int) -> None:
        svc.on_event(report("CS1", request_id, [1], True))

    svc = make(store, Station(OcppVersion.V201, reports))
    got = await svc.get_messages("CS1", wait_s=0.2)
    assert got.complete is False and [m["id"] for m in got.messages] == [1]
    with pytest.raises(VersionUnsupported, match=r"2\.0\.1"):
        await make(store, Station(OcppVersion.V16, reports)).get_messages("CP1")
