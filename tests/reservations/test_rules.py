"""The pure rules of a reservation's life."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from csms.reservations import rules
from csms.reservations.rules import Reservation, ReservationInvalid, ReservationRequest, Status

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def _req(**kw: object) -> ReservationRequest:
    base = ReservationRequest("CP1", 1, "TAG1", T0 + timedelta(minutes=15))
    return replace(base, **kw)  # type: ignore[arg-type]


def _held(status: Status = Status.ACTIVE, evse: int = 1, station: str = "CP1") -> Reservation:
    return Reservation(5, station, evse, "TAG1", T0 + timedelta(minutes=15), status, T0)


def test_a_request_in_the_future_within_the_limit_passes() -> None:
    req = _req()
    assert rules.check_request(req, protocol="ocpp1.6", now=T0, max_duration=DAY) == req


@pytest.mark.parametrize(("req", "protocol", "why"), [
    (_req(expires_at=T0), "ocpp1.6", "not in the future"),
    (_req(expires_at=T0 + 2 * DAY), "ocpp1.6", "ahead"),
    (_req(expires_at=datetime(2026, 12, 1, 10, 0)), "ocpp1.6", "time zone"),
    (_req(id_tag="X" * 21), "ocpp1.6", "1 to 20"),
    (_req(id_tag=""), "ocpp2.0.1", "1 to 36"),
    (_req(evse_id=-1), "ocpp2.0.1", "evse_id"),
    (_req(connector_type="cType2"), "ocpp1.6", "2.0.1 field"),
    (_req(connector_type="Type2"), "ocpp2.0.1", "one of"),
])
def test_a_request_a_station_could_not_take_is_refused_with_the_reason(
    req: ReservationRequest, protocol: str, why: str
) -> None:
    with pytest.raises(ReservationInvalid, match=why):
        rules.check_request(req, protocol=protocol, now=T0, max_duration=DAY)


def test_a_2_0_1_id_token_may_be_36_characters_with_a_connector_type() -> None:
    req = _req(id_tag="X" * 36, connector_type="cType2")
    assert rules.check_request(req, protocol="ocpp2.0.1", now=T0, max_duration=DAY) == req


@pytest.mark.parametrize(("held_evse", "asked", "clash"),
                         [(1, 1, True), (1, 2, False), (0, 2, True), (2, 0, True)])
def test_an_open_reservation_clashes_on_its_evse_or_when_either_is_for_any(
    held_evse: int, asked: int, clash: bool
) -> None:
    held = _held(evse=held_evse)
    assert (rules.clashing(_req(evse_id=asked), [held]) is held) is clash
    assert rules.clashing(_req(evse_id=asked), [_held(Status.EXPIRED, evse=held_evse)]) is None
    assert rules.clashing(_req(evse_id=asked, station_id="CP2"), [held]) is None


@pytest.mark.parametrize(("answer", "status"), [
    ("Accepted", Status.ACTIVE), ("Occupied", Status.REJECTED), ("Faulted", Status.REJECTED),
    ("Unavailable", Status.REJECTED), ("Rejected", Status.REJECTED),
])
def test_the_station_answer_decides_active_or_rejected_and_is_kept(answer: str, status: Status) -> None:
    r = rules.answered(_held(Status.PENDING), answer, T0)
    assert (r.status, r.station_answer) == (status, answer)
    assert (r.ended_at is None) is (status is Status.ACTIVE)


def test_no_answer_leaves_a_failed_reservation_saying_why() -> None:
    r = rules.unanswered(_held(Status.PENDING), "timeout", T0)
    assert (r.status, r.station_answer, r.ended_at) == (Status.FAILED, "timeout", T0)


def test_expiry_is_due_at_expires_at_and_only_once() -> None:
    r = _held()
    assert not rules.due(r, r.expires_at - timedelta(seconds=1))
    assert rules.due(r, r.expires_at)
    expired = rules.expire(r, r.expires_at)
    assert expired is not None and expired.status is Status.EXPIRED
    assert not rules.due(expired, r.expires_at + DAY)
    assert rules.expire(expired, r.expires_at + DAY) is None


@pytest.mark.parametrize(("update", "status"), [("Expired", Status.EXPIRED), ("Removed", Status.REMOVED)])
def test_a_station_status_update_ends_an_open_reservation(update: str, status: Status) -> None:
    r = rules.station_update(_held(), update, T0)
    assert r is not None and r.status is status and r.ended_at == T0
    assert rules.station_update(_held(Status.USED), update, T0) is None
    assert rules.station_update(_held(), "Something", T0) is None


def test_a_transaction_consumes_the_reservation_of_its_station_once() -> None:
    used = rules.consumed(_held(), "CP1", "42", T0)
    assert used is not None and (used.status, used.transaction_id) == (Status.USED, "42")
    assert rules.consumed(used, "CP1", "43", T0) is None
    assert rules.consumed(_held(), "CP2", "42", T0) is None
    assert rules.consumed(_held(Status.CANCELLED), "CP1", "42", T0) is None


def test_a_transaction_started_as_the_csms_expired_the_reservation_still_consumes_it() -> None:
    expired = rules.expire(_held(), T0)
    assert expired is not None
    used = rules.consumed(expired, "CP1", "42", T0 + timedelta(seconds=1))
    assert used is not None and used.status is Status.USED and used.ended_at == T0


def test_only_an_accepted_cancel_ends_the_reservation() -> None:
    assert rules.cancellable(_held()) and rules.cancellable(_held(Status.PENDING))
    assert not rules.cancellable(_held(Status.EXPIRED))
    kept = rules.cancelled(_held(), "Rejected", T0)
    assert (kept.status, kept.cancel_answer, kept.ended_at) == (Status.ACTIVE, "Rejected", None)
    done = rules.cancelled(_held(), "Accepted", T0)
    assert (done.status, done.ended_at) == (Status.CANCELLED, T0)
