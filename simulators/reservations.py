"""Reservations on the virtual charger: ReserveNow and CancelReservation in both versions.

A reserved EVSE reports ``Reserved`` and admits only the reservation's id tag (a parent tag the
CSMS sends is kept, not used: the charger does not learn a tag's parent). Other drivers are
refused at the EVSE without asking the CSMS, remote starts for them are rejected, and the
fleet's own arrivals keep off it. The session started with the reservation's tag carries its id
(1.6 StartTransaction, 2.0.1 TransactionEvent ``reservationId``). At its expiry the EVSE is free
again (2.0.1 also sends ReservationStatusUpdate ``Expired``); CancelReservation frees it at once.
``refuse_with`` makes every ReserveNow answer that status instead (Occupied, Faulted,
Unavailable, Rejected).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ocppj.timestamps import parse_datetime
from ocppj.versions import OcppVersion
from simulators.link import Served
from simulators.model import ChargerOps, EvseState, Status

REFUSALS = ("Occupied", "Faulted", "Unavailable", "Rejected")


@dataclass(slots=True)
class Held:
    """One accepted reservation, on the EVSE it holds."""

    reservation_id: int
    evse_id: int
    id_tag: str
    parent_id_tag: str | None
    expires_at: datetime  # station time (``SimClock.stamp``)


def idle_status(evse: EvseState) -> Status:
    """What a free EVSE shows without a reservation."""
    if evse.faulted:
        return Status.FAULTED
    return Status.AVAILABLE if evse.operative else Status.UNAVAILABLE


class ReservationBook:
    """The reservations a charger holds, one at most per EVSE."""

    def __init__(self) -> None:
        self.held: dict[int, Held] = {}  # by EVSE id
        self.refuse_with: str | None = None
        self.refused_locally = 0  # drivers turned away from a reserved EVSE

    def holds(self, evse_id: int) -> Held | None:
        return self.held.get(evse_id)

    def admits(self, evse_id: int, id_tag: str) -> bool:
        """Whether ``id_tag`` may start on the EVSE (free, or reserved for it)."""
        h = self.held.get(evse_id)
        return h is None or id_tag == h.id_tag

    def consume(self, evse_id: int, id_tag: str) -> int | None:
        """The reservation a session of ``id_tag`` on the EVSE uses up (None: there is none)."""
        h = self.held.get(evse_id)
        if h is None or id_tag != h.id_tag:
            return None
        del self.held[evse_id]
        return h.reservation_id

    def _by_id(self, reservation_id: int) -> Held | None:
        return next((h for h in self.held.values() if h.reservation_id == reservation_id), None)

    def _target(self, c: ChargerOps, evse_id: int | None, reservation_id: int) -> EvseState | str:
        """The EVSE to hold, or the status word refusing it."""
        if evse_id is None:
            free = [e for e in c.evses.values()
                    if e.free and e.tx is None and self._free_for(e.id, reservation_id)]
            return free[0] if free else "Occupied"
        evse = c.evses.get(evse_id)
        if evse is None:
            return "Rejected"
        if evse.faulted:
            return "Faulted"
        if not evse.operative:
            return "Unavailable"
        if evse.ev is not None or evse.tx is not None or not self._free_for(evse_id, reservation_id):
            return "Occupied"
        return evse

    def _free_for(self, evse_id: int, reservation_id: int) -> bool:
        h = self.held.get(evse_id)
        return h is None or h.reservation_id == reservation_id

    def reserve(
        self, c: ChargerOps, reservation_id: int, evse_id: int | None, id_tag: str, parent_id_tag: str | None,
        expires_at: datetime,
    ) -> str:
        """ReserveNow: the answer's status; an accepted one holds the EVSE until it expires."""
        if self.refuse_with is not None:
            return self.refuse_with
        if not c.accepted:
            return "Rejected"
        previous = self._by_id(reservation_id)  # the same id again replaces that reservation
        target = self._target(c, evse_id, reservation_id)
        if isinstance(target, str):
            return target
        if previous is not None and previous.evse_id != target.id:
            self._release(c, previous)
        h = Held(reservation_id, target.id, id_tag, parent_id_tag, expires_at)
        self.held[target.id] = h
        target.status = Status.RESERVED
        c.send_status(target)
        delay = max(0.0, (expires_at - c.clock.stamp()).total_seconds())
        c.after(delay, lambda: self._expire(c, h))
        return "Accepted"

    def cancel(self, c: ChargerOps, reservation_id: int) -> str:
        """CancelReservation: Accepted when the reservation was held, else Rejected."""
        h = self._by_id(reservation_id)
        if h is None:
            return "Rejected"
        self._release(c, h)
        return "Accepted"

    def _release(self, c: ChargerOps, h: Held) -> None:
        if self.held.get(h.evse_id) is not h:
            return
        del self.held[h.evse_id]
        evse = c.evses[h.evse_id]
        if evse.ev is None and evse.tx is None:
            evse.status = idle_status(evse)
            c.send_status(evse)

    def _expire(self, c: ChargerOps, h: Held) -> None:
        if self.held.get(h.evse_id) is not h:
            return  # used or cancelled before
        self._release(c, h)
        if c.spec.version is OcppVersion.V201:
            payload = {"reservationId": h.reservation_id, "reservationUpdateStatus": "Expired"}
            c.enqueue("ReservationStatusUpdate", lambda: payload)


def _expiry(value: Any) -> datetime | None:
    try:
        return parse_datetime(str(value))
    except ValueError:
        return None


def reserve_now_v16(c: ChargerOps, p: dict[str, Any]) -> Served:
    expires = _expiry(p["expiryDate"])
    if expires is None:
        return Served({"status": "Rejected"})
    status = c.reservations.reserve(c, p["reservationId"], p["connectorId"] or None, p["idTag"],
                                    p.get("parentIdTag"), expires)
    return Served({"status": status})


def reserve_now_v201(c: ChargerOps, p: dict[str, Any]) -> Served:
    expires = _expiry(p["expiryDateTime"])
    if expires is None:
        return Served({"status": "Rejected"})
    group = p.get("groupIdToken")
    status = c.reservations.reserve(c, p["id"], p.get("evseId") or None, p["idToken"]["idToken"],
                                    group["idToken"] if group else None, expires)
    return Served({"status": status})


def cancel_reservation(c: ChargerOps, p: dict[str, Any]) -> Served:
    return Served({"status": c.reservations.cancel(c, p["reservationId"])})
