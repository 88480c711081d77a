"""Tariffs (versioned, OCPI-shaped), their assignments, price previews, running session costs,
and charge detail records: JSON pages and a streamed CSV export."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError

from csms.api.context import ApiContext
from csms.api.cursors import BadCursor, cdr_cursor, read_cdr_cursor
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.store.tariffs import CdrQuery, TariffVersion
from csms.tariffs import codec
from csms.tariffs.assign import Scope
from csms.tariffs.cdr import cdr_json, line_json
from csms.tariffs.export import csv_chunks
from csms.tariffs.pricing import Cost, MeterReading, SessionUsage, decimal_text, price_session
from csms.tariffs.service import TariffService

TARIFF_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,35}$"
TariffId = Annotated[str, Path(pattern=TARIFF_ID, description="1-36 letters, digits or . _ -")]
MAX_PAGE = 1000
MAX_PREVIEW = timedelta(days=31)
EXPORT_CHUNK = 1000


def _service(request: Request) -> TariffService:
    ctx: ApiContext = request.app.state.ctx
    if ctx.tariffs is None:
        raise ApiError(404, "not_found", "tariffs are disabled")
    return ctx.tariffs


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Tariffs = Annotated[TariffService, Depends(_service)]
Ctx = Annotated[ApiContext, Depends(_ctx)]


def tariff_view(v: TariffVersion, versions: list[TariffVersion] | None = None) -> dict[str, Any]:
    view = codec.to_json(v.tariff, created_at=v.created_at)
    view["retired_at"] = iso(v.retired_at)
    if versions is not None:
        view["versions"] = [{"version": x.tariff.version, "created_at": iso(x.created_at)} for x in versions]
    return view


def cost_view(cost: Cost) -> dict[str, Any]:
    return {
        "tariff_id": cost.tariff_id,
        "tariff_version": cost.tariff_version,
        "currency": cost.currency,
        "energy_wh": decimal_text(cost.energy_wh, 3),
        "charging_s": str(cost.charging_s),
        "idle_s": str(cost.idle_s),
        "billed_idle_s": str(cost.billed_idle_s),
        "total_excl_vat": str(cost.excl_vat),
        "total_vat": str(cost.vat),
        "total_incl_vat": str(cost.incl_vat),
        "cost_lines": [line_json(ln) for ln in cost.lines],
        "flags": list(cost.flags),
    }


def _parse(body: object, tariff_id: str | None = None) -> Any:
    try:
        return codec.from_json(body, tariff_id=tariff_id)
    except ValueError as exc:
        raise ApiError(400, "invalid_payload", str(exc)) from None


class AssignmentIn(BaseModel):
    model_config = {"extra": "forbid"}
    scope: Scope
    target: str = Field(
        "", max_length=64, description="station id, tag group, group or site id; '' for default"
    )
    tariff_id: str = Field(pattern=TARIFF_ID)


class ReadingIn(BaseModel):
    at: datetime
    register_wh: Decimal


class PreviewIn(BaseModel):
    """An example session: its times, its energy register readings (at least start and stop)."""

    model_config = {"extra": "forbid"}
    started_at: datetime
    stopped_at: datetime
    readings: list[ReadingIn] = Field(default_factory=list, max_length=10_000)
    charging_ended_at: datetime | None = None
    time_zone: str = "UTC"


def tariffs_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(dependencies=secured)

    @router.get("/api/tariffs", tags=["tariffs"])
    async def list_tariffs(tariffs: Tariffs) -> list[dict[str, Any]]:
        """The latest version of every tariff."""
        return [tariff_view(v) for v in await tariffs.store.list_tariffs()]

    @router.post("/api/tariffs", tags=["tariffs"], status_code=201)
    async def create_tariff(tariffs: Tariffs, body: Annotated[dict[str, Any], Body()]) -> dict[str, Any]:
        """Create a tariff (version 1); 409 ``exists`` when the id is taken (PUT adds versions)."""
        tariff = _parse(body)
        if await tariffs.store.get_tariff(tariff.tariff_id) is not None:
            raise ApiError(409, "exists", f"tariff {tariff.tariff_id!r} exists: PUT a new version")
        try:
            return tariff_view(await tariffs.store.save_tariff(tariff))
        except IntegrityError:  # a concurrent create or version of the same id won
            raise ApiError(
                409, "exists", f"tariff {tariff.tariff_id!r} was just created: PUT a new version"
            ) from None

    @router.get("/api/tariffs/{tariff_id}", tags=["tariffs"])
    async def get_tariff(
        tariff_id: TariffId,
        tariffs: Tariffs,
        version: Annotated[int | None, Query(ge=1)] = None,
    ) -> dict[str, Any]:
        """The latest version (or ``version``), with the list of all versions."""
        found = await tariffs.store.get_tariff(tariff_id, version)
        if found is None:
            raise ApiError(
                404, "not_found", f"no tariff {tariff_id!r}" + (f" version {version}" if version else "")
            )
        return tariff_view(found, await tariffs.store.tariff_versions(tariff_id))

    @router.put("/api/tariffs/{tariff_id}", tags=["tariffs"], responses={201: {"description": "created"}})
    async def put_tariff(
        tariff_id: TariffId,
        tariffs: Tariffs,
        response: Response,
        body: Annotated[dict[str, Any], Body()],
    ) -> dict[str, Any]:
        """A new version of the tariff (201 when the tariff is new). Sessions that started before
        keep the version valid at their start."""
        tariff = _parse(body, tariff_id)
        try:
            saved = await tariffs.store.save_tariff(tariff)
        except IntegrityError:
            raise ApiError(
                409, "conflict", "another version of this tariff was saved at the same moment"
            ) from None
        if saved.tariff.version == 1:
            response.status_code = 201
        return tariff_view(saved)

    @router.delete("/api/tariffs/{tariff_id}", tags=["tariffs"], status_code=204)
    async def retire_tariff(tariff_id: TariffId, tariffs: Tariffs) -> Response:
        """Withdraw the tariff: its assignments go, its versions stay (CDRs refer to them)."""
        if not await tariffs.store.retire_tariff(tariff_id):
            raise ApiError(404, "not_found", f"no tariff {tariff_id!r}")
        return Response(status_code=204)

    @router.post("/api/tariffs/{tariff_id}/preview", tags=["tariffs"])
    async def preview(tariff_id: TariffId, body: PreviewIn, tariffs: Tariffs) -> dict[str, Any]:
        """The price of an example session under the tariff's latest version."""
        found = await tariffs.store.get_tariff(tariff_id)
        if found is None:
            raise ApiError(404, "not_found", f"no tariff {tariff_id!r}")
        try:
            zone = ZoneInfo(body.time_zone)
        except (ValueError, KeyError):
            raise ApiError(
                400, "invalid_payload", f"time_zone {body.time_zone!r} is not an IANA time zone"
            ) from None
        times = [body.started_at, body.stopped_at, *(r.at for r in body.readings)]
        if body.charging_ended_at is not None:
            times.append(body.charging_ended_at)
        if any(x.tzinfo is None for x in times):
            raise ApiError(400, "invalid_payload", "times need a zone, e.g. 2026-12-07T18:00:00Z")
        if not timedelta(0) <= body.stopped_at - body.started_at <= MAX_PREVIEW:
            raise ApiError(400, "invalid_payload", "an example session lasts from 0 to 31 days")
        if any(not Decimal(0) <= r.register_wh < Decimal(10) ** 12 for r in body.readings):
            raise ApiError(400, "invalid_payload", "register_wh must be from 0 to below 10^12 Wh")
        readings = tuple(MeterReading(r.at, r.register_wh) for r in body.readings)
        try:
            usage = SessionUsage(body.started_at, body.stopped_at, readings, body.charging_ended_at)
            return cost_view(price_session(found.tariff, usage, zone))
        except (ValueError, TypeError, ArithmeticError) as exc:
            raise ApiError(400, "invalid_payload", str(exc)) from None

    @router.get("/api/tariff-assignments", tags=["tariffs"])
    async def list_assignments(tariffs: Tariffs) -> list[dict[str, str]]:
        """Which tariff prices whose sessions. Precedence: station, tag group, group, site, default."""
        return [{"scope": s, "target": t, "tariff_id": x} for s, t, x in await tariffs.store.assignments()]

    @router.put("/api/tariff-assignments", tags=["tariffs"])
    async def assign(body: AssignmentIn, tariffs: Tariffs) -> dict[str, str]:
        if (body.scope is Scope.DEFAULT) != (body.target == ""):
            raise ApiError(
                400, "invalid_payload", "the default scope has an empty target; the others need one"
            )
        found = await tariffs.store.get_tariff(body.tariff_id)
        if found is None or found.retired_at is not None:
            raise ApiError(400, "unknown_tariff", f"no tariff {body.tariff_id!r} in force")
        await tariffs.store.assign(body.scope.value, body.target, body.tariff_id)
        return {"scope": body.scope.value, "target": body.target, "tariff_id": body.tariff_id}

    @router.delete("/api/tariff-assignments", tags=["tariffs"], status_code=204)
    async def unassign(
        tariffs: Tariffs,
        scope: Scope,
        target: Annotated[str, Query(max_length=64)] = "",
    ) -> Response:
        if not await tariffs.store.unassign(scope.value, target):
            raise ApiError(404, "not_found", f"no assignment for {scope.value} {target!r}")
        return Response(status_code=204)

    @router.get("/api/transactions/{charger_id}/{tx_id}/cost", tags=["transactions"])
    async def transaction_cost(charger_id: str, tx_id: str, tariffs: Tariffs, ctx: Ctx) -> dict[str, Any]:
        """The session's cost: final once it ended, else as if it stopped now."""
        tx = await ctx.service.store.get_transaction(charger_id, tx_id)
        if tx is None:
            raise ApiError(404, "not_found", f"no transaction {tx_id!r} of {charger_id!r}")
        cost = await tariffs.quote(tx)
        if cost is None:
            raise ApiError(404, "no_tariff", "no tariff applies to this session")
        return {**cost_view(cost), "active": tx.active}

    @router.get("/api/cdrs", tags=["cdrs"], response_model=None)
    async def list_cdrs(
        tariffs: Tariffs,
        response: Response,
        since: Annotated[
            datetime | None, Query(alias="from", description="sessions stopped at or after")
        ] = None,
        until: Annotated[datetime | None, Query(alias="to", description="sessions stopped before")] = None,
        charger_id: Annotated[str | None, Query(max_length=48)] = None,
        site_id: Annotated[str | None, Query(max_length=36)] = None,
        format: Literal["json", "csv"] = "json",
        cursor: Annotated[str | None, Query(max_length=500)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 100,
    ) -> list[dict[str, Any]] | StreamingResponse:
        """Charge detail records by stop time, oldest first. JSON: a page (``X-Next-Cursor``);
        CSV: every record in range, streamed (a header row, RFC 4180 quoting, UTF-8)."""
        for name, value in (("from", since), ("to", until)):
            if value is not None and value.tzinfo is None:
                raise ApiError(400, "bad_request", f"{name} needs a zone, e.g. 2026-12-01T00:00:00Z")
        try:
            after = read_cdr_cursor(cursor) if cursor else None
        except BadCursor as exc:
            raise ApiError(400, "bad_request", str(exc)) from None
        query = CdrQuery(since, until, charger_id, site_id, after, limit)
        store = tariffs.store
        if format == "csv":
            return StreamingResponse(
                csv_chunks(store, query),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="cdrs.csv"'},
            )
        page = await store.list_cdrs(query)
        if len(page) == limit:
            last = page[-1]
            assert last.cdr_id is not None
            response.headers["X-Next-Cursor"] = cdr_cursor(last.stopped_at, last.cdr_id)
        return [cdr_json(c) for c in page]

    @router.get("/api/cdrs/{cdr_id}", tags=["cdrs"])
    async def get_cdr(cdr_id: Annotated[int, Path(ge=1)], tariffs: Tariffs) -> dict[str, Any]:
        found = await tariffs.store.get_cdr(cdr_id)
        if found is None:
            raise ApiError(404, "not_found", f"no CDR {cdr_id}")
        return cdr_json(found)

    @router.post("/api/cdrs/{cdr_id}/reprice", tags=["cdrs"])
    async def reprice(cdr_id: Annotated[int, Path(ge=1)], tariffs: Tariffs) -> dict[str, Any]:
        """Price the session again with the tariff assigned to it now (recorded in the audit log)."""
        found = await tariffs.store.get_cdr(cdr_id)
        if found is None:
            raise ApiError(404, "not_found", f"no CDR {cdr_id}")
        again = await tariffs.make_cdr(found.station_id, found.tx_id, reprice=True)
        if again is None:
            raise ApiError(409, "conflict", "the transaction of this CDR is gone")
        return cdr_json(again)

    return router
