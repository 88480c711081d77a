"""OCPP 1.6 reservations: the ReserveNow and CancelReservation payloads, and their answers."""

from __future__ import annotations

from typing import Any

from csms.reservations.rules import Reservation
from ocppj.timestamps import format_datetime


def reserve_now(r: Reservation, parent_id_tag: str | None = None) -> tuple[str, dict[str, Any]]:
    """ReserveNow for ``r`` (connector 0: any connector of the station)."""
    payload: dict[str, Any] = {
        "connectorId": r.evse_id, "expiryDate": format_datetime(r.expires_at), "idTag": r.id_tag,
        "reservationId": r.id,
    }
    if parent_id_tag:
        payload["parentIdTag"] = parent_id_tag
    return "ReserveNow", payload


def cancel_reservation(reservation_id: int) -> tuple[str, dict[str, Any]]:
    return "CancelReservation", {"reservationId": reservation_id}


def answer_status(answer: dict[str, Any]) -> str:
    """The status word of either answer (Accepted, Faulted, Occupied, Rejected, Unavailable)."""
    return str(answer["status"])
