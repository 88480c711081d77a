"""The profile service over a scripted station and a real SQLite store, with a fixed clock:
defaults, what is kept, and the outcome kept for a call that got no answer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from csms.errors import CallTimeout, StationNotConnected
from csms.profiles.calls import RecordedCalls
from csms.profiles.rules import Kind, Period, Profile, ProfileInvalid, Purpose, RateUnit
from csms.profiles.service import ProfileService
from csms.store.profiles import SqlOperatorCommands, SqlProfiles
from csms.store.sql import SqlStore
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 7, 8, 0, 30, 250_000, tzinfo=UTC)
P = Profile(profile_id=5, evse_id=1, purpose=Purpose.TX_DEFAULT, stack_level=1, kind=Kind.ABSOLUTE,
            unit=RateUnit.A, periods=(Period(0, 16.0),))


class FixedClock:
    def now(self) -> datetime:
        return T0


class ScriptedStation:
    """A station of ``version`` that answers each action from ``replies`` (an exception is raised)."""

    def __init__(self, version: OcppVersion | None, replies: dict[str, Any]) -> None:
        self.version = version
        self.replies = replies
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return self.version

    async def call(self, station_id: str, action: str, payload: dict[str, Any], *,
                   timeout: float | None = None) -> dict[str, Any]:
        self.sent.append((action, payload))
        reply = self.replies[action]
        if isinstance(reply, Exception):
            raise reply
        return dict(reply)


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(str(tmp_path / "p.sqlite3"))
    try:
        yield s
    finally:
        await s.close()


def service(store: SqlStore, station: ScriptedStation) -> ProfileService:
    calls = RecordedCalls(station, SqlOperatorCommands(store.db), FixedClock())
    return ProfileService(calls, SqlProfiles(store.db))


async def test_an_absolute_profile_without_a_start_starts_now_and_is_kept(store: SqlStore) -> None:
    station = ScriptedStation(OcppVersion.V201, {"SetChargingProfile": {"status": "Accepted"}})
    kept = await service(store, station).set("CS1", P)
    assert kept.profile.start_schedule == T0.replace(microsecond=0) and kept.set_at == T0
    [(action, payload)] = station.sent
    assert action == "SetChargingProfile"
    assert payload["chargingProfile"]["chargingSchedule"][0]["startSchedule"] == "2026-12-07T08:00:30Z"
    assert await SqlProfiles(store.db).get_profile("CS1", 5) == kept


async def test_a_call_without_an_answer_is_kept_as_such_and_nothing_is_stored(store: SqlStore) -> None:
    station = ScriptedStation(OcppVersion.V16, {"SetChargingProfile": CallTimeout("no answer in 30 s")})
    with pytest.raises(CallTimeout):
        await service(store, station).set("CP1", P)
    [outcome] = await SqlOperatorCommands(store.db).list_commands("CP1")
    assert (outcome.action, outcome.status, outcome.result) == (
        "SetChargingProfile", "timeout", {"error": "no answer in 30 s"})
    assert await SqlProfiles(store.db).list_profiles("CP1") == []


async def test_nothing_is_sent_to_an_absent_station_or_for_a_broken_profile(store: SqlStore) -> None:
    absent = ScriptedStation(None, {})
    with pytest.raises(StationNotConnected):
        await service(store, absent).set("CP9", P)
    station = ScriptedStation(OcppVersion.V16, {})
    with pytest.raises(ProfileInvalid, match="purpose"):
        await service(store, station).set("CP1", replace(P, purpose=Purpose.CHARGING_STATION_MAX, evse_id=0))
    assert station.sent == [] and await SqlOperatorCommands(store.db).list_commands("CP1") == []


async def test_a_rejected_clear_keeps_the_profile(store: SqlStore) -> None:
    station = ScriptedStation(OcppVersion.V16, {"SetChargingProfile": {"status": "Accepted"},
                                                "ClearChargingProfile": {"status": "Rejected"}})
    svc = service(store, station)
    await svc.set("CP1", P)
    answer, removed = await svc.clear("CP1", 5)
    assert answer.status == "Rejected" and removed is False
    assert [s.profile.profile_id for s in await svc.list_profiles("CP1", limit=10, after_id=None)] == [5]
