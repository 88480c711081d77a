"""Station events and transactions with their signed meter values: the history routes of the API."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso, transaction_view
from csms.core.station_events import MAX_PAGE, EventQuery, SignedMeterValue, StationEvent
from ocppj.timestamps import parse_datetime


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(_ctx)]


def event_view(ev: StationEvent) -> dict[str, Any]:
    return {
        "id": ev.id, "at": iso(ev.at), "station_time": iso(ev.station_time), "type": ev.type, "data": ev.data,
    }


def signed_view(v: SignedMeterValue) -> dict[str, Any]:
    return {
        "at": iso(v.at), "station_time": iso(v.station_time), "context": v.context,
        "measurand": v.measurand, "encoding": v.encoding, "signing_method": v.signing_method,
        "public_key": v.public_key, "data": v.data,
    }


def _once(values: list[SignedMeterValue]) -> list[SignedMeterValue]:
    """Each reading once: a station retrying a message sends its signed values again."""
    seen: set[tuple[object, ...]] = set()
    out = []
    for v in values:
        key = (v.station_time, v.context, v.measurand, v.encoding, v.signing_method, v.public_key, v.data)
        if key not in seen:
            seen.add(key)
            out.append(v)
    return out


def _cursor(raw: str | None) -> int | None:
    """The id a cursor stands for (exclusive upper bound of the next page)."""
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 18) or int(raw) < 1:
        raise ApiError(400, "bad_request", f"cursor {raw!r} is not one this API returned")
    return int(raw)


async def _registered(ctx: ApiContext, charger_id: str) -> None:
    if await ctx.service.store.get_station(charger_id) is None:
        raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")


def events_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(dependencies=secured)

    @router.get("/api/chargers/{charger_id}/events", tags=["chargers"])
    async def station_events(
        charger_id: str, ctx: Ctx, type: str | None = Query(None, max_length=64),
        since: str | None = Query(None, description="RFC 3339 time: events received at or after it"),
        limit: int = Query(100, ge=1, le=MAX_PAGE), cursor: str | None = None,
    ) -> dict[str, Any]:
        """The messages a station reported, newest first; ``next_cursor`` fetches the next page."""
        before = _cursor(cursor)
        try:
            after = None if since is None else parse_datetime(since)
        except ValueError:
            raise ApiError(400, "bad_request", f"since {since!r} is not an RFC 3339 time") from None
        await _registered(ctx, charger_id)
        rows = await ctx.service.store.list_station_events(
            EventQuery(charger_id, type=type, since=after, limit=limit + 1, before_id=before)
        )
        page = rows[:limit]
        more = len(rows) > limit and page[-1].id is not None
        return {"items": [event_view(e) for e in page], "next_cursor": str(page[-1].id) if more else None}

    @router.get("/api/transactions/{charger_id}/{tx_id}", tags=["transactions"])
    async def transaction(charger_id: str, tx_id: str, ctx: Ctx) -> dict[str, Any]:
        """One transaction with the signed meter values the station sent for it."""
        await _registered(ctx, charger_id)
        store = ctx.service.store
        tx = await store.get_transaction(charger_id, tx_id)
        if tx is None:
            raise HTTPException(404, f"transaction {tx_id!r} of charger {charger_id!r} not found")
        signed = await store.list_signed_meter_values(charger_id, tx_id)
        return {**transaction_view(ctx, tx), "signed_meter_values": [signed_view(v) for v in _once(signed)]}

    return router
