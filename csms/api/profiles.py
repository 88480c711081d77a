"""Charging-profile routes: set, list and clear a station's operator profiles, read its composite
schedule, and list the outcomes of the operator's commands to it (profiles, display, monitoring)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from csms.api.context import ApiContext
from csms.api.errors import ApiError, from_control_error
from csms.api.outbound import absent
from csms.api.views import iso
from csms.errors import ControlError, StationNotConnected
from csms.profiles.calls import VersionUnsupported
from csms.profiles.rules import (
    MAX_ID,
    MAX_PERIODS,
    Kind,
    Period,
    Profile,
    ProfileInvalid,
    Purpose,
    RateUnit,
    Recurrency,
    StoredProfile,
    profile_fields,
    source_of,
)
from csms.profiles.service import ProfileService
from csms.store.profiles import CommandOutcome
from ocppj.timestamps import as_utc

Int32 = Annotated[int, Field(ge=0, le=MAX_ID)]


def utc(dt: datetime | None) -> datetime | None:
    """Aware UTC (a time without an offset is taken as UTC)."""
    return None if dt is None else as_utc(dt)


class PeriodIn(BaseModel):
    start_s: Int32 = Field(description="seconds after the schedule's start; the first period starts at 0")
    limit: float = Field(description="in the profile's unit (A per phase, or W), >= 0")
    number_phases: int | None = Field(None, description="1, 2 or 3")


class ProfileIn(BaseModel):
    """A full charging profile for one EVSE (0: the whole station)."""

    profile_id: int = Field(ge=1, le=MAX_ID, description="800000..999999 are the load balancer's")
    evse_id: Int32 = 0
    purpose: Purpose = Field(description="ChargePointMaxProfile (1.6), ChargingStationMaxProfile (2.0.1), "
                                         "TxDefaultProfile, TxProfile")
    stack_level: int = Field(0, description="0..1000")
    kind: Kind = Kind.ABSOLUTE
    unit: RateUnit = RateUnit.A
    periods: list[PeriodIn] = Field(min_length=1, max_length=MAX_PERIODS)
    recurrency: Recurrency | None = None
    start_schedule: datetime | None = Field(None, description="Absolute: default now; Recurring: required")
    duration_s: int | None = Field(None, ge=1, le=MAX_ID)
    valid_from: datetime | None = None
    valid_to: datetime | None = None
    transaction_id: str | None = Field(None, min_length=1, max_length=36)
    min_rate: float | None = Field(None, ge=0)

    def profile(self) -> Profile:
        return Profile(
            profile_id=self.profile_id, evse_id=self.evse_id, purpose=self.purpose,
            stack_level=self.stack_level,
            kind=self.kind, unit=self.unit,
            periods=tuple(Period(p.start_s, p.limit, p.number_phases) for p in self.periods),
            recurrency=self.recurrency, start_schedule=utc(self.start_schedule), duration_s=self.duration_s,
            valid_from=utc(self.valid_from), valid_to=utc(self.valid_to), transaction_id=self.transaction_id,
            min_rate=self.min_rate,
        )


def profile_view(stored: StoredProfile) -> dict[str, Any]:
    """The profile's fields, ``source``, the station's ``status`` and ``detail``, ``set_at``."""
    fields = profile_fields(stored.profile)
    for key in ("start_schedule", "valid_from", "valid_to"):
        value = getattr(stored.profile, key)
        fields[key] = iso(value)
    return {"charger_id": stored.station_id, **fields, "source": stored.profile.source.value,
            "status": stored.answer.status, "detail": stored.answer.detail, "set_at": iso(stored.set_at)}


def balancer_view(ctx: ApiContext, charger_id: str) -> list[dict[str, Any]]:
    """The load balancer's TxProfiles the station accepted (live, not kept), ``source`` balancer."""
    if ctx.balancer is None:
        return []
    return [
        {"charger_id": charger_id, "profile_id": profile_id, "evse_id": evse_id, "purpose": "TxProfile",
         "kind": "Relative", "unit": "A", "transaction_id": tx_id,
         "periods": [{"start_s": 0, "limit": limit_a, "number_phases": phases}],
         "source": source_of(profile_id).value, "status": "Accepted"}
        for profile_id, evse_id, tx_id, limit_a, phases in ctx.balancer.profiles_sent(charger_id)
    ]


def outcome_view(o: CommandOutcome) -> dict[str, Any]:
    return {"id": o.id, "charger_id": o.station_id, "action": o.action, "request": o.request,
            "status": o.status, "result": o.result, "at": iso(o.at)}


def _service(request: Request) -> ProfileService:
    ctx: ApiContext = request.app.state.ctx
    if ctx.profiles is None:
        raise HTTPException(404, "charging profiles by hand are not running")
    return ctx.profiles


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Profiles = Annotated[ProfileService, Depends(_service)]
Ctx = Annotated[ApiContext, Depends(_ctx)]
ChargerId = Annotated[str, Path(min_length=1, max_length=48)]


async def registered(ctx: ApiContext, charger_id: str) -> None:
    """404 ``not_registered`` for an unknown charger."""
    if charger_id not in ctx.service.live and await ctx.service.store.get_station(charger_id) is None:
        raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")


async def command_error(ctx: ApiContext, charger_id: str, exc: ControlError) -> ApiError:
    """The API error of a command that got no answer (409/404 when the station is not there)."""
    if isinstance(exc, StationNotConnected):
        return await absent(ctx, charger_id)
    return from_control_error(exc)


def profiles_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/chargers/{charger_id}", tags=["charging profiles"], dependencies=secured)

    @router.post("/charging-profiles")
    async def set_charging_profile(
        charger_id: ChargerId, body: ProfileIn, profiles: Profiles, ctx: Ctx
    ) -> dict[str, Any]:
        """SetChargingProfile in the station's version; the profile is kept with the station's
        answer (``status``: Accepted or Rejected, ``detail``: its reason) and listed below."""
        try:
            return profile_view(await profiles.set(charger_id, body.profile()))
        except ProfileInvalid as exc:
            raise ApiError(400, "invalid_profile", str(exc)) from None
        except ControlError as exc:
            raise await command_error(ctx, charger_id, exc) from None

    @router.get("/charging-profiles")
    async def list_charging_profiles(
        charger_id: ChargerId, profiles: Profiles, ctx: Ctx,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
    ) -> dict[str, Any]:
        """The profiles set by hand, by id (``next_cursor`` pages on; null on the last page), and in
        ``balancer`` the load balancer's TxProfiles the station runs now (``source`` balancer)."""
        await registered(ctx, charger_id)
        page = await profiles.list_profiles(charger_id, limit=limit, after_id=cursor)
        nxt = str(page[-1].profile.profile_id) if len(page) == limit else None
        return {"items": [profile_view(p) for p in page], "next_cursor": nxt,
                "balancer": balancer_view(ctx, charger_id)}

    @router.get("/charging-profiles/reported")
    async def reported_charging_profiles(
        charger_id: ChargerId, profiles: Profiles, ctx: Ctx,
        evse_id: Annotated[int | None, Query(ge=0, le=MAX_ID)] = None,
        wait_s: Annotated[float, Query(ge=0, le=30)] = 5.0,
    ) -> dict[str, Any]:
        """2.0.1 GetChargingProfiles: every profile the station has installed, whoever set it (the
        operator, the balancer, the station's own limits), from its ReportChargingProfiles messages
        collected for up to ``wait_s``: ``{status, request_id, complete, profiles: [{evse_id,
        limit_source, source, profile}]}``; status NoProfiles: none."""
        try:
            report = await profiles.reported(charger_id, evse_id=evse_id, wait_s=wait_s)
        except VersionUnsupported as exc:
            raise ApiError(409, "unsupported_version", str(exc)) from None
        except ControlError as exc:
            raise await command_error(ctx, charger_id, exc) from None
        return {"charger_id": charger_id, "status": report.answer.status, "detail": report.answer.detail,
                "request_id": report.request_id, "complete": report.complete, "profiles": report.profiles}

    @router.delete("/charging-profiles/{profile_id}")
    async def clear_charging_profile(
        charger_id: ChargerId, profile_id: Annotated[int, Path(ge=1, le=MAX_ID)], profiles: Profiles,
        ctx: Ctx,
    ) -> dict[str, Any]:
        """ClearChargingProfile; the kept profile goes once the station has it no more (Accepted,
        or Unknown: it had none by that id)."""
        try:
            answer, removed = await profiles.clear(charger_id, profile_id)
        except ProfileInvalid as exc:
            raise ApiError(400, "invalid_profile", str(exc)) from None
        except ControlError as exc:
            raise await command_error(ctx, charger_id, exc) from None
        return {"charger_id": charger_id, "profile_id": profile_id, "status": answer.status,
                "detail": answer.detail, "removed": removed}

    @router.get("/composite-schedule")
    async def composite_schedule(
        charger_id: ChargerId, profiles: Profiles, ctx: Ctx,
        evse_id: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
        duration_s: Annotated[int, Query(ge=1, le=MAX_ID)] = 3600,
        unit: Literal["A", "W"] | None = None,
    ) -> dict[str, Any]:
        """GetCompositeSchedule, in one shape for both versions: ``status``, ``evse_id``,
        ``schedule_start``, ``duration_s``, ``unit`` and ``periods`` [{start_s, limit, number_phases}]."""
        try:
            wanted = None if unit is None else RateUnit(unit)
            found = await profiles.composite(charger_id, evse_id, duration_s, wanted)
        except ProfileInvalid as exc:
            raise ApiError(400, "invalid_profile", str(exc)) from None
        except ControlError as exc:
            raise await command_error(ctx, charger_id, exc) from None
        return {
            "charger_id": charger_id, "status": found.answer.status, "detail": found.answer.detail,
            "evse_id": found.evse_id, "schedule_start": iso(found.start), "duration_s": found.duration_s,
            "unit": None if found.unit is None else found.unit.value,
            "periods": [{"start_s": p.start_s, "limit": p.limit, "number_phases": p.number_phases}
                        for p in found.periods],
        }

    @router.get("/operator-commands")
    async def operator_commands(
        charger_id: ChargerId, profiles: Profiles, ctx: Ctx,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    ) -> dict[str, Any]:
        """The profile, display-message and monitoring commands sent to the station and what each got
        back (``status``: the answer's status, or timeout / call_error / invalid_response), newest first."""
        await registered(ctx, charger_id)
        page = await profiles.calls.outcomes.list_commands(charger_id, limit=limit, before_id=cursor)
        nxt = str(page[-1].id) if len(page) == limit else None
        return {"items": [outcome_view(o) for o in page], "next_cursor": nxt}

    return router
