"""The reservation service over a real SQLite store, a fake clock and a scripted station."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from csms.core.events import ReservationConsumed, StationReported
from csms.errors import CallTimeout
from csms.reservations.rules import Reservation, ReservationRequest, Status
from csms.reservations.service import NotOpen, ReservationClash, ReservationService, StationRefused
from csms.store.engine import Database
from csms.store.reservations import SqlReservations
from ocppj.versions import OcppVersion

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class FakeClock:
    def __init__(self) -> None:
        self.t = T0

    def now(self) -> datetime:
        return self.t


class ScriptedStation:
    """Answers ReserveNow and CancelReservation with what the test set; records what was sent."""

    def __init__(self) -> None:
        self.connected = True
        self.reserve_answer: str | Exception = "Accepted"
        self.cancel_answer = "Accepted"
        self.sent: list[tuple[str, int, str | None]] = []

    def protocol_of(self, station_id: str) -> OcppVersion | None:
        return OcppVersion.V201 if self.connected else None

    async def reserve(self, r: Reservation, parent_id_tag: str | None) -> str:
        self.sent.append(("ReserveNow", r.id, parent_id_tag))
        if isinstance(self.reserve_answer, Exception):
            raise self.reserve_answer
        return self.reserve_answer

    async def cancel(self, station_id: str, reservation_id: int) -> str:
        self.sent.append(("CancelReservation", reservation_id, None))
        return self.cancel_answer


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[Database]:
    database = await Database.open(str(tmp_path / "r.sqlite3"))
    try:
        yield database
    finally:
        await database.close()


@pytest.fixture
def station() -> ScriptedStation:
    return ScriptedStation()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(db: Database, station: ScriptedStation, clock: FakeClock) -> ReservationService:
    async def parent_of(tag: str) -> str | None:
        return "FLEET" if tag == "CHILD" else None

    return ReservationService(SqlReservations(db), station, clock, max_duration=timedelta(days=1),
                              parent_of=parent_of)


def _req(evse: int = 1, minutes: int = 10, tag: str = "TAG1") -> ReservationRequest:
    return ReservationRequest("CP1", evse, tag, T0 + timedelta(minutes=minutes))


async def test_an_accepted_reservation_is_active_and_carries_the_tags_parent(
    service: ReservationService, station: ScriptedStation
) -> None:
    r = await service.reserve(_req(tag="CHILD"))
    assert r.status is Status.ACTIVE and r.station_answer == "Accepted"
    assert station.sent == [("ReserveNow", r.id, "FLEET")]
    assert await service.get(r.id) == r


async def test_refusals_and_silence_are_kept_and_a_clash_or_an_offline_station_sends_nothing(
    service: ReservationService, station: ScriptedStation
) -> None:
    station.reserve_answer = "Faulted"
    with pytest.raises(StationRefused) as refused:
        await service.reserve(_req())
    assert refused.value.reservation.status is Status.REJECTED
    station.reserve_answer = CallTimeout("no answer")
    with pytest.raises(CallTimeout):
        await service.reserve(_req())
    [failed, rejected] = await service.list_reservations()
    assert (failed.status, failed.station_answer) == (Status.FAILED, "timeout")
    assert (rejected.status, rejected.station_answer) == (Status.REJECTED, "Faulted")
    station.reserve_answer = "Accepted"
    held = await service.reserve(_req(evse=0))
    sent = len(station.sent)
    with pytest.raises(ReservationClash) as clash:
        await service.reserve(_req(evse=2))
    assert clash.value.held == held
    station.connected = False
    with pytest.raises(Exception, match="not connected"):
        await service.reserve(_req(evse=3))
    assert len(station.sent) == sent and len(await service.list_reservations()) == 3


async def test_the_tick_expires_what_is_due_once(service: ReservationService, clock: FakeClock) -> None:
    soon = await service.reserve(_req(evse=1, minutes=5))
    later = await service.reserve(_req(evse=2, minutes=10))
    assert await service.tick(T0 + timedelta(minutes=4)) == []
    [expired] = await service.tick(T0 + timedelta(minutes=5))
    assert (expired.id, expired.status) == (soon.id, Status.EXPIRED)
    assert expired.ended_at == T0 + timedelta(minutes=5)
    assert await service.tick(T0 + timedelta(minutes=6)) == []
    assert [r.id for r in await service.tick(T0 + timedelta(hours=1))] == [later.id]
    assert await service.list_reservations(open=True) == []


async def test_a_consuming_transaction_marks_the_reservation_used_once_and_only_for_its_station(
    service: ReservationService, clock: FakeClock
) -> None:
    r = await service.reserve(_req())
    clock.t = T0 + timedelta(minutes=1)
    assert await service.apply(ReservationConsumed(station_id="CP2", reservation_id=r.id, tx_id="9")) is None
    used = await service.apply(ReservationConsumed(station_id="CP1", reservation_id=r.id, tx_id="42"))
    assert used is not None and (used.status, used.transaction_id) == (Status.USED, "42")
    assert await service.apply(ReservationConsumed(station_id="CP1", reservation_id=r.id, tx_id="42")) is None
    assert await service.apply(ReservationConsumed(station_id="CP1", reservation_id=999, tx_id="1")) is None
    assert (await service.get(r.id)) == used
    with pytest.raises(NotOpen):
        await service.cancel(r.id)


async def test_a_2_0_1_status_update_ends_the_reservation_of_its_own_station(
    service: ReservationService,
) -> None:
    r = await service.reserve(_req())

    def update(station_id: str, status: str, rid: object = r.id) -> StationReported:
        data = {"reservationId": rid, "reservationUpdateStatus": status}
        return StationReported(station_id=station_id, action="ReservationStatusUpdate", data=data)

    assert await service.apply(update("CP2", "Removed")) is None
    assert await service.apply(update("CP1", "Removed", rid="x")) is None
    removed = await service.apply(update("CP1", "Removed"))
    assert removed is not None and removed.status is Status.REMOVED
    assert await service.apply(update("CP1", "Expired")) is None  # ended already


async def test_cancel_needs_the_stations_accept_and_an_open_reservation(
    service: ReservationService, station: ScriptedStation
) -> None:
    r = await service.reserve(_req())
    station.cancel_answer = "Rejected"
    with pytest.raises(StationRefused):
        await service.cancel(r.id)
    kept = await service.get(r.id)
    assert kept is not None and (kept.status, kept.cancel_answer) == (Status.ACTIVE, "Rejected")
    station.cancel_answer = "Accepted"
    done = await service.cancel(r.id)
    assert done is not None and done.status is Status.CANCELLED
    with pytest.raises(NotOpen):
        await service.cancel(r.id)
    assert await service.cancel(12345) is None


async def test_the_worker_applies_queued_station_events_and_ticks(
    service: ReservationService, clock: FakeClock
) -> None:
    service.tick_s = 0.01
    a = await service.reserve(_req(evse=1))
    b = await service.reserve(_req(evse=2, minutes=1))
    service.on_event(StationReported(station_id="CP1", action="Heartbeat", data={}))  # not watched: ignored
    service.on_event(ReservationConsumed(station_id="CP1", reservation_id=a.id, tx_id="7"))
    clock.t = T0 + timedelta(minutes=2)
    worker = asyncio.create_task(service.run())
    try:
        for _ in range(200):
            statuses = [(await service.get(x.id)) for x in (a, b)]
            if all(s is not None and not s.open for s in statuses):
                break
            await asyncio.sleep(0.01)
    finally:
        worker.cancel()
        await asyncio.gather(worker, return_exceptions=True)
    assert [s.status for s in statuses if s is not None] == [Status.USED, Status.EXPIRED]


async def test_a_session_that_used_the_reservation_before_its_answer_arrived_wins(
    db: Database, clock: FakeClock
) -> None:
    class StartsAtOnce(ScriptedStation):
        """Uses the reservation for a session before its ReserveNow answer is read."""

        service: ReservationService

        async def reserve(self, r: Reservation, parent_id_tag: str | None) -> str:
            await self.service.apply(ReservationConsumed(station_id="CP1", reservation_id=r.id, tx_id="5"))
            return "Accepted"

    station = StartsAtOnce()
    service = ReservationService(SqlReservations(db), station, clock, max_duration=timedelta(days=1))
    station.service = service
    r = await service.reserve(_req())
    assert (r.status, r.transaction_id, r.station_answer) == (Status.USED, "5", "Accepted")
    assert await service.get(r.id) == r
