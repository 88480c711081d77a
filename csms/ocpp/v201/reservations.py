"""OCPP 2.0.1 reservations: the ReserveNow and CancelReservation payloads, and their answers."""

from __future__ import annotations

from typing import Any

from csms.reservations.rules import Reservation
from ocppj.timestamps import format_datetime


def reserve_now(r: Reservation, parent_id_tag: str | None = None) -> tuple[str, dict[str, Any]]:
    """ReserveNow for ``r``: without ``evseId`` (``r.evse_id`` 0) any EVSE of the station."""
    payload: dict[str, Any] = {
        "id": r.id, "expiryDateTime": format_datetime(r.expires_at),
        "idToken": {"idToken": r.id_tag, "type": "Central"},
    }
    if r.evse_id:
        payload["evseId"] = r.evse_id
    if r.connector_type:
        payload["connectorType"] = r.connector_type
    if parent_id_tag:
        payload["groupIdToken"] = {"idToken": parent_id_tag, "type": "Central"}
    return "ReserveNow", payload


def cancel_reservation(reservation_id: int) -> tuple[str, dict[str, Any]]:
    return "CancelReservation", {"reservationId": reservation_id}


def answer_status(answer: dict[str, Any]) -> str:
    """The status word of either answer (Accepted, Faulted, Occupied, Rejected, Unavailable);
    a reason the station gave is not kept."""
    return str(answer["status"])


def status_update(data: Any) -> tuple[int, str] | None:
    """A ReservationStatusUpdate's (reservationId, Expired | Removed), None if unreadable."""
    try:
        return int(data["reservationId"]), str(data["reservationUpdateStatus"])
    except (KeyError, TypeError, ValueError):
        return None
