"""The rules of a reservation's life, as pure functions (no database, no event loop).

A reservation is created ``pending`` and sent to its station (ReserveNow). The station's answer
makes it ``active`` (Accepted) or ``rejected`` (Occupied, Faulted, Unavailable, Rejected); no
answer (timeout, connection lost, CallError) makes it ``failed``. An active reservation ends
exactly once: ``used`` by the transaction that names it, ``cancelled`` by the operator
(CancelReservation accepted), ``expired`` at ``expires_at`` (the CSMS's tick) or when the station
says so (2.0.1 ReservationStatusUpdate Expired), ``removed`` when the station dropped it
(ReservationStatusUpdate Removed).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

MAX_RESERVATION_ID = 2**31 - 1  # reservationId is a 32-bit integer in both versions
MAX_EVSE_ID = 2**31 - 1
MAX_ID_TAG = {"ocpp1.6": 20, "ocpp2.0.1": 36}  # CiString20 idTag / IdToken's 36 characters
CONNECTOR_TYPES = frozenset({  # 2.0.1 ConnectorEnumType
    "cCCS1", "cCCS2", "cG105", "cTesla", "cType1", "cType2", "s309-1P-16A", "s309-1P-32A", "s309-3P-16A",
    "s309-3P-32A", "sBS1361", "sCEE-7-7", "sType2", "sType3", "Other1PhMax16A", "Other1PhOver16A", "Other3Ph",
    "Pan", "wInductive", "wResonant", "Undetermined", "Unknown",
})


class Status(enum.StrEnum):
    """Where a reservation is in its life."""

    PENDING = "pending"  # sent, no answer yet
    ACTIVE = "active"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    USED = "used"
    REMOVED = "removed"


OPEN = frozenset({Status.PENDING, Status.ACTIVE})
"""The statuses of a reservation that still holds its EVSE (``active=true`` in the listing)."""


class ReservationInvalid(ValueError):
    """A reservation request the CSMS refuses before sending anything (the text says why)."""


@dataclass(frozen=True, slots=True)
class ReservationRequest:
    """What an operator asks for: ``evse_id`` 0 reserves any EVSE of the station."""

    station_id: str
    evse_id: int
    id_tag: str
    expires_at: datetime
    connector_type: str | None = None


@dataclass(frozen=True, slots=True)
class Reservation:
    """A reservation as kept: the request, its status, the station's answers, its transaction."""

    id: int
    station_id: str
    evse_id: int
    id_tag: str
    expires_at: datetime
    status: Status
    created_at: datetime
    connector_type: str | None = None
    station_answer: str | None = None
    cancel_answer: str | None = None
    transaction_id: str | None = None
    ended_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.status in OPEN


def check_request(
    req: ReservationRequest, *, protocol: str, now: datetime, max_duration: timedelta,
) -> ReservationRequest:
    """``req`` if a station of ``protocol`` can be sent it now, else ``ReservationInvalid``."""
    if not 0 <= req.evse_id <= MAX_EVSE_ID:
        raise ReservationInvalid(f"evse_id must be between 0 (any) and {MAX_EVSE_ID}")
    limit = MAX_ID_TAG.get(protocol, 20)
    if not req.id_tag or len(req.id_tag) > limit:
        raise ReservationInvalid(f"id_tag must be 1 to {limit} characters for an {protocol} station")
    if req.expires_at.tzinfo is None:
        raise ReservationInvalid("expires_at must carry a time zone (e.g. 2030-01-01T12:00:00Z)")
    if req.expires_at <= now:
        raise ReservationInvalid("expires_at is not in the future")
    if req.expires_at - now > max_duration:
        raise ReservationInvalid(f"expires_at is more than {max_duration.total_seconds():.0f} s ahead")
    if req.connector_type is not None:
        if protocol != "ocpp2.0.1":
            raise ReservationInvalid("connector_type is a 2.0.1 field; 1.6 stations reserve by connector_id")
        if req.connector_type not in CONNECTOR_TYPES:
            raise ReservationInvalid(f"connector_type must be one of {', '.join(sorted(CONNECTOR_TYPES))}")
    return req


def clashing(req: ReservationRequest, held: Iterable[Reservation]) -> Reservation | None:
    """An open reservation of the station that ``req`` would overlap: the same EVSE, or either
    for any EVSE (the station would refuse it; the CSMS says why without asking)."""
    for r in held:
        if r.open and r.station_id == req.station_id and (
            r.evse_id == req.evse_id or r.evse_id == 0 or req.evse_id == 0
        ):
            return r
    return None


def answered(r: Reservation, station_status: str, now: datetime) -> Reservation:
    """The reservation after the station's ReserveNow answer."""
    if station_status == "Accepted":
        return replace(r, status=Status.ACTIVE, station_answer=station_status)
    return replace(r, status=Status.REJECTED, station_answer=station_status, ended_at=now)


def unanswered(r: Reservation, why: str, now: datetime) -> Reservation:
    """The reservation after ReserveNow got no answer (timeout, lost connection, CallError)."""
    return replace(r, status=Status.FAILED, station_answer=why, ended_at=now)


def due(r: Reservation, now: datetime) -> bool:
    """Whether the CSMS's tick expires ``r`` now."""
    return r.open and r.expires_at <= now


def expire(r: Reservation, now: datetime) -> Reservation | None:
    """``r`` expired, or None when it has ended already."""
    return replace(r, status=Status.EXPIRED, ended_at=now) if r.open else None


def station_update(r: Reservation, update: str, now: datetime) -> Reservation | None:
    """A 2.0.1 ReservationStatusUpdate (``Expired`` | ``Removed``); None when nothing changes."""
    if not r.open:
        return None
    if update == "Expired":
        return replace(r, status=Status.EXPIRED, ended_at=now)
    if update == "Removed":
        return replace(r, status=Status.REMOVED, ended_at=now)
    return None


def consumed(r: Reservation, station_id: str, tx_id: str, now: datetime) -> Reservation | None:
    """``r`` used by transaction ``tx_id`` of ``station_id``; None when it is not that station's or
    was used already. A transaction may consume a reservation the CSMS expired a moment before
    (the station started it in time; the messages crossed)."""
    if r.station_id != station_id or r.status is Status.USED:
        return None
    if r.open or r.status in (Status.EXPIRED, Status.REMOVED):
        return replace(r, status=Status.USED, transaction_id=tx_id, ended_at=r.ended_at or now)
    return None


def cancellable(r: Reservation) -> bool:
    """Only an open reservation can be cancelled."""
    return r.open


def cancelled(r: Reservation, station_status: str, now: datetime) -> Reservation:
    """The reservation after the station's CancelReservation answer (Rejected keeps it open)."""
    if station_status == "Accepted":
        return replace(r, status=Status.CANCELLED, cancel_answer=station_status, ended_at=now)
    return replace(r, cancel_answer=station_status)
