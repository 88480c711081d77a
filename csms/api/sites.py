"""Sites and station groups: create and edit sites, label stations with groups, and say where each
station is and what its connectors are. Bulk operations target stations by these
(``csms.core.targets``)."""

from __future__ import annotations

import secrets
from datetime import time
from typing import Annotated, Any
from zoneinfo import available_timezones

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, Field, field_validator, model_validator

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.core.events import IdTagsChanged
from csms.core.sites import (
    GROUP_NAME,
    SITE_ID,
    ConnectorFormat,
    ConnectorSpec,
    ConnectorStandard,
    PowerType,
    Site,
)
from csms.store.sites import SqlSites

MAX_MEMBERS = 100_000
SiteId = Annotated[str, Path(pattern=SITE_ID.pattern, description="1-36 letters, digits or . _ -")]
GroupName = Annotated[str, Path(pattern=GROUP_NAME.pattern, description="1-64 letters, digits or . _ : -")]


def _hhmm(value: str) -> str:
    try:
        time.fromisoformat(value)
    except ValueError:
        raise ValueError("must be HH:MM (24 h)") from None
    if len(value) != 5:
        raise ValueError("must be HH:MM (24 h)")
    return value


class RegularHours(BaseModel):
    """One opening period of a weekday (OCPI RegularHours: weekday 1 = Monday)."""

    model_config = {"extra": "forbid"}
    weekday: int = Field(ge=1, le=7)
    period_begin: str
    period_end: str

    _check = field_validator("period_begin", "period_end")(lambda cls, v: _hhmm(v))


class ExceptionalPeriod(BaseModel):
    model_config = {"extra": "forbid"}
    period_begin: str = Field(description="RFC 3339 UTC")
    period_end: str


class OpeningHours(BaseModel):
    """OCPI Hours: open day and night, or regular hours, with exceptional openings and closings."""

    model_config = {"extra": "forbid"}
    twentyfourseven: bool
    regular_hours: list[RegularHours] = Field(default_factory=list, max_length=100)
    exceptional_openings: list[ExceptionalPeriod] = Field(default_factory=list, max_length=100)
    exceptional_closings: list[ExceptionalPeriod] = Field(default_factory=list, max_length=100)

    @model_validator(mode="after")
    def _one_kind(self) -> OpeningHours:
        if self.twentyfourseven and self.regular_hours:
            raise ValueError("regular_hours must be empty when twentyfourseven is true")
        return self


class SiteIn(BaseModel):
    model_config = {"extra": "forbid"}
    site_id: str | None = Field(None, pattern=SITE_ID.pattern, description="POST only; generated if absent")
    name: str = Field(min_length=1, max_length=255)
    address: str = Field("", max_length=255)
    city: str = Field("", max_length=45)
    postal_code: str = Field("", max_length=10)
    country: str = Field("", pattern=r"^([A-Z]{3})?$", description="ISO 3166-1 alpha-3, e.g. DEU")
    latitude: float | None = Field(None, ge=-90, le=90)
    longitude: float | None = Field(None, ge=-180, le=180)
    operator: str = Field("", max_length=255)
    time_zone: str = Field("UTC", description="IANA time zone, e.g. Europe/Berlin")
    opening_hours: OpeningHours | None = None

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        if v != "UTC" and v not in _zones():
            raise ValueError(f"{v!r} is not an IANA time zone")
        return v

    @model_validator(mode="after")
    def _both_coordinates(self) -> SiteIn:
        if (self.latitude is None) != (self.longitude is None):
            raise ValueError("give latitude and longitude together")
        return self

    def site(self, site_id: str) -> Site:
        hours = None if self.opening_hours is None else self.opening_hours.model_dump()
        return Site(
            site_id, self.name, self.address, self.city, self.postal_code, self.country, self.latitude,
            self.longitude, self.operator, self.time_zone, hours,
        )


_ZONES: set[str] = set()


def _zones() -> set[str]:
    if not _ZONES:
        _ZONES.update(available_timezones())
    return _ZONES


class MembersIn(BaseModel):
    model_config = {"extra": "forbid"}
    stations: list[Annotated[str, Field(min_length=1, max_length=48)]] = Field(max_length=MAX_MEMBERS)


class PlacementIn(BaseModel):
    """Where a station belongs; a field left out is unchanged, ``site_id: null`` removes the site."""

    model_config = {"extra": "forbid"}
    site_id: str | None = Field(None, pattern=SITE_ID.pattern)
    groups: list[Annotated[str, Field(pattern=GROUP_NAME.pattern)]] | None = Field(None, max_length=100)


class ConnectorSpecIn(BaseModel):
    model_config = {"extra": "forbid"}
    evse_id: int = Field(ge=1, le=1000)
    connector_id: int = Field(1, ge=1, le=100)
    standard: ConnectorStandard
    format: ConnectorFormat = ConnectorFormat.SOCKET
    power_type: PowerType = PowerType.AC_3_PHASE
    max_power_w: int = Field(ge=1, le=2_000_000)

    def spec(self) -> ConnectorSpec:
        return ConnectorSpec(self.evse_id, self.connector_id, self.standard, self.max_power_w, self.format,
                             self.power_type)


def site_view(site: Site, station_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "site_id": site.site_id, "name": site.name, "address": site.address, "city": site.city,
        "postal_code": site.postal_code, "country": site.country, "latitude": site.latitude,
        "longitude": site.longitude, "operator": site.operator, "time_zone": site.time_zone,
        "opening_hours": site.opening_hours, "created_at": iso(site.created_at),
        "updated_at": iso(site.updated_at),
    }
    if station_count is not None:
        view["station_count"] = station_count
    return view


def connector_spec_view(spec: ConnectorSpec) -> dict[str, Any]:
    return {
        "evse_id": spec.evse_id, "connector_id": spec.connector_id, "standard": spec.standard.value,
        "format": spec.format.value, "power_type": spec.power_type.value, "max_power_w": spec.max_power_w,
    }


def _sites(request: Request) -> SqlSites:
    ctx: ApiContext = request.app.state.ctx
    if ctx.sites is None:
        raise ApiError(404, "not_found", "sites are not available on this store")
    return ctx.sites


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Sites = Annotated[SqlSites, Depends(_sites)]
Ctx = Annotated[ApiContext, Depends(_ctx)]


async def _registered(ctx: ApiContext, station_ids: list[str]) -> None:
    """400 naming the ids that are not registered stations."""
    known = await ctx.service.store.station_profiles()
    unknown = [s for s in dict.fromkeys(station_ids) if s not in known]
    if unknown:
        shown = ", ".join(unknown[:10]) + (f" and {len(unknown) - 10} more" if len(unknown) > 10 else "")
        raise ApiError(400, "not_registered", f"not registered: {shown}")


def _groups_changed(ctx: ApiContext) -> None:
    """Station groups decide which id tags a station's local list holds (``csms.local_lists``): a change
    is announced as ``IdTagsChanged`` (every tag may be concerned), which updates the connected stations."""
    ctx.bus.publish(IdTagsChanged(id_tags=()))


async def _site_exists(sites: SqlSites, site_id: str) -> None:
    if await sites.get_site(site_id) is None:
        raise ApiError(400, "unknown_site", f"site {site_id!r} does not exist")


def sites_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(dependencies=secured)

    @router.get("/api/sites", tags=["sites"])
    async def list_sites(sites: Sites) -> list[dict[str, Any]]:
        """Every site with its ``station_count``, by id."""
        return [site_view(s, n) for s, n in await sites.list_sites()]

    @router.post("/api/sites", tags=["sites"], status_code=201)
    async def create_site(body: SiteIn, sites: Sites) -> dict[str, Any]:
        """Create a site; ``site_id`` is generated when not given (409 ``exists`` when taken)."""
        site_id = body.site_id or f"site-{secrets.token_hex(4)}"
        if await sites.get_site(site_id) is not None:
            raise ApiError(409, "exists", f"site {site_id!r} already exists")
        await sites.put_site(body.site(site_id))
        site = await sites.get_site(site_id)
        assert site is not None
        return site_view(site, 0)

    @router.get("/api/sites/{site_id}", tags=["sites"])
    async def get_site(site_id: SiteId, sites: Sites) -> dict[str, Any]:
        """The site and the ids of its stations."""
        site = await sites.get_site(site_id)
        if site is None:
            raise ApiError(404, "not_found", f"site {site_id!r} does not exist")
        stations = await sites.site_stations(site_id)
        return {**site_view(site, len(stations)), "stations": stations}

    @router.put("/api/sites/{site_id}", tags=["sites"], responses={201: {"description": "created"}})
    async def put_site(site_id: SiteId, body: SiteIn, sites: Sites, response: Response) -> dict[str, Any]:
        """Create or replace the site (201 when created)."""
        if body.site_id is not None and body.site_id != site_id:
            raise ApiError(400, "invalid_payload", "site_id in the body differs from the path")
        if await sites.put_site(body.site(site_id)):
            response.status_code = 201
        site = await sites.get_site(site_id)
        assert site is not None
        return site_view(site)

    @router.delete("/api/sites/{site_id}", tags=["sites"], status_code=204)
    async def delete_site(site_id: SiteId, sites: Sites) -> Response:
        """Remove the site; its stations are left without a site."""
        if not await sites.delete_site(site_id):
            raise ApiError(404, "not_found", f"site {site_id!r} does not exist")
        return Response(status_code=204)

    @router.get("/api/groups", tags=["sites"])
    async def list_groups(sites: Sites) -> list[dict[str, Any]]:
        """Every group (a group exists while it has members) with its ``station_count``."""
        return [{"name": name, "station_count": n} for name, n in await sites.list_groups()]

    @router.get("/api/groups/{name}", tags=["sites"])
    async def get_group(name: GroupName, sites: Sites) -> dict[str, Any]:
        members = await sites.group_members(name)
        if not members:
            raise ApiError(404, "not_found", f"group {name!r} has no members")
        return {"name": name, "station_count": len(members), "stations": members}

    @router.put("/api/groups/{name}", tags=["sites"])
    async def put_group(name: GroupName, body: MembersIn, sites: Sites, ctx: Ctx) -> dict[str, Any]:
        """Replace the group's members (registered stations only; an empty list removes the group)."""
        await _registered(ctx, body.stations)
        await sites.set_group_members(name, body.stations)
        _groups_changed(ctx)
        members = await sites.group_members(name)
        return {"name": name, "station_count": len(members), "stations": members}

    @router.post("/api/groups/{name}/members", tags=["sites"])
    async def add_members(name: GroupName, body: MembersIn, sites: Sites, ctx: Ctx) -> dict[str, Any]:
        """Add stations to the group; ``added`` counts those that were not members yet."""
        await _registered(ctx, body.stations)
        added = await sites.add_to_group(name, body.stations)
        if added:
            _groups_changed(ctx)
        return {"name": name, "added": added, "station_count": len(await sites.group_members(name))}

    @router.delete("/api/groups/{name}/members/{charger_id}", tags=["sites"], status_code=204)
    async def remove_member(name: GroupName, charger_id: str, sites: Sites, ctx: Ctx) -> Response:
        if not await sites.remove_from_group(name, [charger_id]):
            raise ApiError(404, "not_found", f"{charger_id!r} is not in group {name!r}")
        _groups_changed(ctx)
        return Response(status_code=204)

    @router.delete("/api/groups/{name}", tags=["sites"], status_code=204)
    async def delete_group(name: GroupName, sites: Sites, ctx: Ctx) -> Response:
        if not await sites.delete_group(name):
            raise ApiError(404, "not_found", f"group {name!r} has no members")
        _groups_changed(ctx)
        return Response(status_code=204)

    @router.put("/api/chargers/{charger_id}/placement", tags=["chargers"])
    async def put_placement(charger_id: str, body: PlacementIn, sites: Sites, ctx: Ctx) -> dict[str, Any]:
        """Set the station's site and/or groups (fields left out are unchanged)."""
        await _registered(ctx, [charger_id])
        if "site_id" in body.model_fields_set:
            if body.site_id is not None:
                await _site_exists(sites, body.site_id)
            await sites.set_station_site(charger_id, body.site_id)
        if body.groups is not None:
            await sites.set_station_groups(charger_id, body.groups)
            _groups_changed(ctx)
        placed = await sites.placement(charger_id)
        return {"id": charger_id, "site_id": placed.site_id, "groups": list(placed.groups)}

    @router.put("/api/chargers/{charger_id}/connectors", tags=["chargers"])
    async def put_connectors(
        charger_id: str, body: Annotated[list[ConnectorSpecIn], Field(max_length=1000)], sites: Sites,
        ctx: Ctx,
    ) -> list[dict[str, Any]]:
        """Replace what the station's connectors are: standard (plug), format, power type, max power."""
        await _registered(ctx, [charger_id])
        keys = [(c.evse_id, c.connector_id) for c in body]
        if len(set(keys)) != len(keys):
            raise ApiError(400, "invalid_payload", "each (evse_id, connector_id) may appear once")
        await sites.set_connector_specs(charger_id, [c.spec() for c in body])
        return [connector_spec_view(s) for s in await sites.connector_specs(charger_id)]

    return router

