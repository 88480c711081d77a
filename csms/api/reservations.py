"""Reservation routes: reserve an EVSE for an id tag, list and read reservations, cancel one.

A station that refuses (Occupied, Faulted, Unavailable, Rejected) answers 409
``reservation_rejected``; the refusal is kept as a ``rejected`` reservation the listing shows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.reservations.rules import (
    MAX_RESERVATION_ID,
    Reservation,
    ReservationInvalid,
    ReservationRequest,
)
from csms.reservations.service import NotOpen, ReservationClash, StationRefused

NEXT_CURSOR = "X-Next-Cursor"


class ReservationsView(Protocol):
    """What the routes need of the reservation service (``csms.reservations.service``)."""

    async def reserve(self, req: ReservationRequest) -> Reservation: ...

    async def cancel(self, reservation_id: int) -> Reservation | None: ...

    async def get(self, reservation_id: int) -> Reservation | None: ...

    async def list_reservations(
        self, *, station_id: str | None = None, open: bool | None = None, limit: int = 100,
        before_id: int | None = None,
    ) -> list[Reservation]: ...


class NewReservation(BaseModel):
    """``evse_id`` (2.0.1) or ``connector_id`` (1.6) names what is reserved; 0 or neither: any."""

    model_config = ConfigDict(extra="forbid")

    charger_id: str = Field(min_length=1, max_length=48)
    evse_id: int | None = Field(None, ge=0, le=MAX_RESERVATION_ID)
    connector_id: int | None = Field(None, ge=0, le=MAX_RESERVATION_ID)
    id_tag: str = Field(min_length=1, max_length=36)
    expires_at: datetime
    connector_type: str | None = Field(None, min_length=1, max_length=20, description="2.0.1 only")


def reservation_view(r: Reservation) -> dict[str, Any]:
    """``{id, charger_id, evse_id, connector_type, id_tag, expires_at, status, station_answer,
    cancel_answer, transaction_id, created_at, ended_at}``, times in RFC 3339 UTC."""
    return {
        "id": r.id, "charger_id": r.station_id, "evse_id": r.evse_id, "connector_type": r.connector_type,
        "id_tag": r.id_tag, "expires_at": iso(r.expires_at), "status": r.status.value,
        "station_answer": r.station_answer, "cancel_answer": r.cancel_answer,
        "transaction_id": r.transaction_id, "created_at": iso(r.created_at), "ended_at": iso(r.ended_at),
    }


def _reservations(request: Request) -> ReservationsView:
    ctx: ApiContext = request.app.state.ctx
    if ctx.reservations is None:
        raise ApiError(404, "not_found", "reservations are disabled (reservations.enabled)")
    return ctx.reservations


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Reservations = Annotated[ReservationsView, Depends(_reservations)]
Ctx = Annotated[ApiContext, Depends(_ctx)]
ReservationId = Annotated[int, Path(ge=1, le=MAX_RESERVATION_ID)]


def reservations_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/reservations", tags=["reservations"], dependencies=secured)

    @router.post("", status_code=201)
    async def create_reservation(
        body: NewReservation, reservations: Reservations, ctx: Ctx
    ) -> dict[str, Any]:
        """Send ReserveNow; 201 with the ``active`` reservation when the station accepts."""
        if body.evse_id is not None and body.connector_id is not None and body.evse_id != body.connector_id:
            raise ApiError(400, "bad_request", "give evse_id or connector_id, not two different values")
        if await ctx.service.store.get_station(body.charger_id) is None:
            raise ApiError(404, "not_found", f"charger {body.charger_id} is not registered")
        evse = body.evse_id if body.evse_id is not None else body.connector_id or 0
        req = ReservationRequest(body.charger_id, evse, body.id_tag, body.expires_at, body.connector_type)
        try:
            r = await reservations.reserve(req)
        except ReservationInvalid as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        except ReservationClash as exc:
            raise ApiError(409, "reservation_clash", str(exc)) from None
        except StationRefused as exc:
            raise ApiError(409, "reservation_rejected",
                           f"the station answered {exc.answer}; kept as reservation {exc.reservation.id}",
                           ) from None
        return reservation_view(r)

    @router.get("")
    async def list_reservations(
        reservations: Reservations, response: Response, charger_id: str | None = None,
        active: bool | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_RESERVATION_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Newest first; ``active=true``: pending and active, ``false``: ended. A full page carries
        the next page's ``cursor`` in ``X-Next-Cursor``."""
        page = await reservations.list_reservations(station_id=charger_id, open=active, limit=limit,
                                                    before_id=cursor)
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = str(page[-1].id)
        return [reservation_view(r) for r in page]

    @router.get("/{reservation_id}")
    async def get_reservation(reservation_id: ReservationId, reservations: Reservations) -> dict[str, Any]:
        r = await reservations.get(reservation_id)
        if r is None:
            raise ApiError(404, "not_found", f"reservation {reservation_id} not found")
        return reservation_view(r)

    @router.delete("/{reservation_id}")
    async def cancel_reservation(reservation_id: ReservationId, reservations: Reservations) -> dict[str, Any]:
        """Send CancelReservation; 200 with the ``cancelled`` reservation."""
        try:
            r = await reservations.cancel(reservation_id)
        except NotOpen as exc:
            raise ApiError(409, "not_active", str(exc)) from None
        except StationRefused as exc:
            raise ApiError(409, "cancel_rejected", f"the station answered {exc.answer}") from None
        if r is None:
            raise ApiError(404, "not_found", f"reservation {reservation_id} not found")
        return reservation_view(r)

    return router
