"""The two big listings, stations and transactions, filtered, sorted and paged on the server.

Both answer a plain JSON list, as they always did; paging travels in headers (RFC 8288 ``Link``
with ``rel="next"``, the same cursor in ``X-Next-Cursor``, and for stations ``X-Total-Count``).
Without any paging parameter, ``/api/chargers`` lists every station and ``/api/transactions``
the newest 500 received, as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from csms.api.console.live import STATES, station_power_w, station_state
from csms.api.context import ApiContext
from csms.api.cursors import BadCursor, offset_cursor, read_offset, read_tx_cursor, tx_cursor
from csms.api.views import charger_view, transaction_view
from csms.core.ports import TimeRange, TxKey, TxOrder
from csms.core.service import LiveStation
from csms.core.sites import Placement

StationSort = Literal["id", "vendor", "model", "protocol", "status", "connected", "last_seen"]
STATION_SORTS: tuple[str, ...] = get_args(StationSort)
MAX_PAGE = 1000


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(_ctx)]


@dataclass(slots=True)
class _Row:
    """One station while the list is filtered and sorted; its view is built only when needed."""

    live: LiveStation
    security_profile: int
    connected: bool
    view: dict[str, Any] | None = None

    def shown(self, ctx: ApiContext) -> dict[str, Any]:
        if self.view is None:
            view = charger_view(ctx, self.live, self.security_profile)
            view["state"] = station_state(view)
            view["power_w"] = station_power_w(view)
            self.view = view
        return self.view


def _station_rows(ctx: ApiContext, profiles: dict[str, int]) -> list[_Row]:
    """The registered stations (id and security profile, read from the store per request, so
    another process's registrations and removals show at once) merged with the live state."""
    live = ctx.service.live
    rows: dict[str, _Row] = {}
    for sid, profile in profiles.items():
        rows[sid] = _Row(live.get(sid) or LiveStation(sid), profile, False)
    for sid, row in rows.items():
        session = ctx.registry.get(sid)
        row.connected = session is not None and not session.closed
    return list(rows.values())


def _matches(row: _Row, needle: str) -> bool:
    info = row.live.info
    fields = (info.vendor, info.model, info.serial_number) if info else ()
    return any(needle in f.lower() for f in (row.live.station_id, *fields) if f)


def _sort_key(ctx: ApiContext, field: StationSort) -> Callable[[_Row], tuple[Any, ...]]:
    """Rows without the value go last in either direction; the id breaks ties."""
    def info_of(r: _Row, name: str) -> str | None:
        return getattr(r.live.info, name) if r.live.info else None

    value: Callable[[_Row], Any] = {
        "id": lambda r: None,
        "vendor": lambda r: info_of(r, "vendor"),
        "model": lambda r: info_of(r, "model"),
        "protocol": lambda r: r.live.protocol.value if r.live.protocol else None,
        "status": lambda r: STATES.index(r.shown(ctx)["state"]),
        "connected": lambda r: r.connected,
        "last_seen": lambda r: r.live.last_seen(),
    }[field]
    return lambda r: (value(r), r.live.station_id)


def _parse_sort(sort: str | None, fields: tuple[str, ...], default: str) -> tuple[str, bool]:
    field, _, direction = (sort or default).partition(":")
    if field not in fields or direction not in ("", "asc", "desc"):
        raise HTTPException(400, f"sort must be <field>[:asc|:desc] with field one of {', '.join(fields)}")
    return field, direction == "desc"


def _next_link(request: Request, response: Response, cursor: str) -> None:
    url = request.url.remove_query_params(["cursor", "offset"]).include_query_params(cursor=cursor)
    response.headers["Link"] = f'<{url.path}?{url.query}>; rel="next"'
    response.headers["X-Next-Cursor"] = cursor


def _utc(dt: datetime | None) -> datetime | None:
    return dt.replace(tzinfo=UTC) if dt is not None and dt.tzinfo is None else dt


def _placed(view: dict[str, Any], placement: Placement | None) -> dict[str, Any]:
    view["site_id"] = placement.site_id if placement else None
    view["groups"] = list(placement.groups) if placement else []
    return view


def pages_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(dependencies=secured)

    @router.get("/api/chargers", tags=["chargers"])
    async def list_chargers(
        ctx: Ctx, request: Request, response: Response,
        limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
        cursor: str | None = None,
        offset: Annotated[int | None, Query(ge=0)] = None,
        sort: Annotated[str | None, Query(description="id, vendor, model, protocol, status, connected or "
                                          "last_seen, then :asc (default) or :desc")] = None,
        q: Annotated[str | None, Query(max_length=100, description="in id, vendor, model, serial")] = None,
        connected: bool | None = None,
        protocol: Annotated[str | None, Query(description="ocpp1.6 or ocpp2.0.1")] = None,
        status: Annotated[str | None, Query(description=f"the console's state: {', '.join(STATES)}")] = None,
        site_id: Annotated[str | None, Query(max_length=36, description="stations of this site")] = None,
        group: Annotated[str | None, Query(max_length=64, description="stations in this group")] = None,
    ) -> list[dict[str, Any]]:
        """Stations (registered, or connected when auto-registration is on), each with its console
        ``state`` and ``power_w``; ``X-Total-Count`` is the number matching the filters."""
        field, desc = _parse_sort(sort, STATION_SORTS, "id")
        if status is not None and status not in STATES:
            raise HTTPException(400, f"status must be one of {', '.join(STATES)}")
        if cursor is not None and offset is not None:
            raise HTTPException(400, "give cursor or offset, not both")
        try:
            start = read_offset(cursor) if cursor is not None else offset or 0
        except BadCursor as exc:
            raise HTTPException(400, str(exc)) from None
        rows = _station_rows(ctx, await ctx.service.store.station_profiles())
        if q:
            needle = q.strip().lower()
            rows = [r for r in rows if _matches(r, needle)]
        if connected is not None:
            rows = [r for r in rows if r.connected is connected]
        if protocol is not None:
            rows = [r for r in rows if r.live.protocol is not None and r.live.protocol.value == protocol]
        if status is not None:
            rows = [r for r in rows if r.shown(ctx)["state"] == status]
        placements = await ctx.sites.placements() if ctx.sites is not None else {}
        if site_id is not None:
            rows = [r for r in rows if (p := placements.get(r.live.station_id)) and p.site_id == site_id]
        if group is not None:
            rows = [r for r in rows if (p := placements.get(r.live.station_id)) and group in p.groups]
        key = _sort_key(ctx, field)  # type: ignore[arg-type]  # checked by _parse_sort
        present = [r for r in rows if key(r)[0] is not None or field == "id"]
        absent = [r for r in rows if key(r)[0] is None and field != "id"]
        present.sort(key=key, reverse=desc)
        absent.sort(key=lambda r: r.live.station_id, reverse=desc)
        ordered = present + absent
        end = len(ordered) if limit is None else start + limit
        response.headers["X-Total-Count"] = str(len(ordered))
        if end < len(ordered):
            _next_link(request, response, offset_cursor(end))
        return [_placed(r.shown(ctx), placements.get(r.live.station_id)) for r in ordered[start:end]]

    @router.get("/api/transactions", tags=["transactions"])
    async def list_transactions(
        ctx: Ctx, request: Request, response: Response,
        charger_id: str | None = None, active: bool | None = None,
        start_from: Annotated[datetime | None, Query(alias="from", description="started at or after")] = None,
        start_to: Annotated[datetime | None, Query(alias="to", description="started before")] = None,
        limit: Annotated[int, Query(ge=1, le=10_000)] = 500,
        cursor: str | None = None,
        sort: Annotated[str | None, Query(description="started_at[:asc] or started_at:desc")] = None,
    ) -> list[dict[str, Any]]:
        """Sessions, newest received first; with ``sort`` or ``cursor``, by start time in pages."""
        since, until = _utc(start_from), _utc(start_to)
        if since is not None and until is not None and since >= until:
            raise HTTPException(400, "from must be before to")
        started = TimeRange(since, until) if since is not None or until is not None else None
        after: TxKey | None = None
        order: TxOrder | None = None
        if sort is not None:
            _, desc = _parse_sort(sort, ("started_at",), "started_at")
            order = TxOrder.STARTED_DESC if desc else TxOrder.STARTED_ASC
        if cursor is not None:
            try:
                cursor_order, after = read_tx_cursor(cursor)
            except BadCursor as exc:
                raise HTTPException(400, str(exc)) from None
            if order is not None and order is not cursor_order:
                raise HTTPException(400, "the cursor was made for another sort")
            order = cursor_order
        txs = await ctx.service.store.list_transactions(
            station_id=charger_id, active=active, limit=limit, started=started, order=order, after=after
        )
        if order is not None and len(txs) == limit:
            _next_link(request, response, tx_cursor(order, TxKey.of(txs[-1])))
        return [transaction_view(ctx, tx) for tx in txs]

    return router
