"""The operator API: chargers, actions, transactions, id tags, health and metrics.

Every route reads the ``ApiContext`` from ``app.state.ctx``. When the API listens on
a non-loopback address, every ``/api`` route needs ``Authorization: Bearer <token>``.
Errors answer ``{"error": code, "detail": text}`` (``csms.api.errors``); state changes are
recorded in the audit log (``csms.api.audit``). /docs and /redoc are served from packaged assets.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import PlainTextResponse
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field

from csms.api import errors
from csms.api.alarms import alarms_router
from csms.api.audit import audit_router, audited
from csms.api.auth import guard_of
from csms.api.cluster import cluster_router
from csms.api.console.routes import console_router
from csms.api.context import ApiContext
from csms.api.desired_config import desired_config_router
from csms.api.display import display_router
from csms.api.errors import ERROR_RESPONSES, ApiError, from_control_error
from csms.api.events import events_router
from csms.api.feeders import feeders_router
from csms.api.firmware import firmware_router
from csms.api.local_lists import NAME_PATTERN, local_lists_router
from csms.api.outbound import absent, check_size
from csms.api.pages import pages_router
from csms.api.profiles import profiles_router
from csms.api.reservations import reservations_router
from csms.api.security import security_router
from csms.api.sites import sites_router
from csms.api.tariffs import tariffs_router
from csms.api.uploads import receiver_router, uploads_router
from csms.api.views import charger_detail, iso, registered_view
from csms.core.events import IdTagsChanged
from csms.core.model import AuthStatus, IdTag
from csms.core.service import LiveStation
from csms.errors import ControlError, UnknownAction
from csms.metrics import CONTENT_TYPE
from csms.ocpp.handshake import MAX_STATION_ID
from csms.security import passwords
from csms.security.lifecycle import sets_password
from ocppj import schemas
from ocppj.directions import station_initiated


def ctx_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ApiContext, Depends(ctx_of)]


def require_token(request: Request) -> None:
    """Bearer / X-API-Token (operator or read-only role) or the console cookie; see csms.api.auth."""
    guard_of(request).check(request)


class IdTagIn(BaseModel):
    id_tag: str = Field(min_length=1, max_length=255)
    status: AuthStatus = AuthStatus.ACCEPTED
    expiry: datetime | None = None
    parent: str | None = Field(None, max_length=255)
    group: str | None = Field(None, min_length=1, max_length=64, pattern=NAME_PATTERN,
                              description="tag group: local-list policies select tags by it")


class ChargerIn(BaseModel):
    security_profile: int = Field(0, ge=0, le=3)
    password: str | None = Field(None, min_length=16, max_length=40)


def create_app(ctx: ApiContext) -> FastAPI:
    app: FastAPI = FastAPIOffline(
        title="CSMS operator API",
        version="0.1.0",
        description="Chargers, CSMS-initiated OCPP actions, transactions and id tags.",
        responses=ERROR_RESPONSES,
        static_url="/docs-static",
    )
    app.state.ctx = ctx
    errors.install(app)
    secured = [Depends(require_token), Depends(audited)]

    @app.get("/healthz", tags=["ops"])
    async def healthz(ctx: Ctx) -> dict[str, Any]:
        return {"status": "ok", "connected_stations": len(ctx.registry)}

    @app.get("/metrics", tags=["ops"], response_class=PlainTextResponse)
    async def metrics(ctx: Ctx) -> Response:
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"])
    async def get_charger(charger_id: str, ctx: Ctx) -> dict[str, Any]:
        view = await charger_detail(ctx, charger_id)
        if view is None:
            raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")
        state = await ctx.local_lists.state(charger_id) if ctx.local_lists is not None else None
        view["local_list_version"] = state.version if state is not None else None
        view["local_list_in_sync"] = state.in_sync if state is not None else None
        return view

    @app.get("/api/chargers/{charger_id}/variables", dependencies=secured, tags=["chargers"])
    async def get_charger_variables(charger_id: str, ctx: Ctx) -> dict[str, str]:
        """The device variables the station last reported (2.0.1 NotifyReport), by key
        ``Component(instance)[evse.connector]/Variable(instance)/type``; ask for a fresh report
        with the ``GetBaseReport`` action."""
        live = ctx.service.live.get(charger_id)
        if live is None:
            raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")
        return dict(sorted(live.variables.items()))

    @app.put("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"])
    async def put_charger(charger_id: str, body: ChargerIn, ctx: Ctx) -> dict[str, Any]:
        """Register a station or change its security profile / password (write-only)."""
        if not charger_id.isprintable() or len(charger_id) > MAX_STATION_ID or "/" in charger_id:
            raise HTTPException(400, "charger id must be 1-48 printable characters without '/'")
        if 1 <= body.security_profile <= 2 and body.password is None:  # profile 3: client certificate
            existing = await ctx.service.store.get_password_hash(charger_id)
            if existing is None:
                raise ApiError(400, "invalid_payload", "security_profile 1 and 2 need a password")
        hashed = await asyncio.to_thread(passwords.hash_password, body.password) if body.password else None
        station = await ctx.service.store.upsert_station(
            charger_id, security_profile=body.security_profile, password_hash=hashed
        )
        ctx.service.live.setdefault(charger_id, LiveStation(charger_id))
        return registered_view(ctx, station)

    @app.delete("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"], status_code=204)
    async def delete_charger(charger_id: str, ctx: Ctx) -> Response:
        """Remove the station with what the features keep about it (reservations, uploads and their
        files, desired-configuration answers, operator profiles, its local list, a tariff assigned
        to it); its history (transactions, CDRs, events, alarms, audit) stays."""
        if not await ctx.service.store.delete_station(charger_id):
            raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")
        if ctx.uploads is not None:
            await ctx.uploads.sweep()
        ctx.service.forget(charger_id)
        if ctx.local_lists is not None:
            await ctx.local_lists.forget(charger_id)
        session = ctx.registry.get(charger_id)
        if session is not None:
            await session.close(1000, "deregistered")
        return Response(status_code=204)

    @app.post("/api/chargers/{charger_id}/actions/{action}", dependencies=secured, tags=["chargers"])
    async def charger_action(
        charger_id: str, action: str, payload: dict[str, Any], ctx: Ctx,
        timeout: Annotated[float | None, Query(gt=0, le=300)] = None,
    ) -> Any:
        """Send any CSMS-initiated OCPP action; the body is the payload in the station's version.

        Refused before anything is sent: a station->CSMS action (400 ``wrong_direction``), an
        unknown action or invalid payload (400), a frame over the station's limit (413). A
        SendLocalList sent here leaves the station's local list recorded out of sync (its next
        sync sends a Full list); other features do not track what is sent here."""
        version = ctx.control.protocol_of(charger_id)
        if version is None:
            raise await absent(ctx, charger_id)
        if action in station_initiated(version):
            raise ApiError(400, "wrong_direction", f"{action} is sent by a charging station, not to one")
        if sets_password(action, payload):
            raise ApiError(400, "bad_request", f"set passwords with POST /api/chargers/{charger_id}/password")
        if action in schemas.actions(version):
            check_size(ctx, charger_id, version, action, payload)
        try:
            return await ctx.control.call(charger_id, action, payload, timeout=timeout)
        except UnknownAction as exc:
            known = ", ".join(sorted(schemas.actions(version) - station_initiated(version)))
            raise ApiError(400, "unknown_action", f"{exc}; known actions: {known}") from None
        except ControlError as exc:
            raise from_control_error(exc) from None
        finally:  # answered or not, the station may hold the list now
            if action == "SendLocalList" and ctx.local_lists is not None:
                await ctx.local_lists.sent_by_hand(charger_id, "SendLocalList sent by the raw action route")

    @app.post("/api/id-tags", dependencies=secured, tags=["id tags"], status_code=201,
              responses={200: {"description": "an existing id tag was updated"}})
    async def put_id_tag(body: IdTagIn, ctx: Ctx, response: Response) -> dict[str, Any]:
        """Add or replace an id tag; stations' local lists follow (see docs/operations.md)."""
        tag = IdTag(body.id_tag, body.status, body.expiry, body.parent)
        if ctx.id_tags is not None:
            created = await ctx.id_tags.put_tag(tag, body.group)
        elif body.group is not None:
            raise ApiError(400, "bad_request", "this store keeps no tag groups")
        else:
            created = await ctx.service.put_id_tag(tag)
        ctx.bus.publish(IdTagsChanged(id_tags=(tag.id_tag,)))
        if not created:
            response.status_code = 200
        return body.model_dump(mode="json")

    @app.get("/api/id-tags", dependencies=secured, tags=["id tags"])
    async def list_id_tags(
        ctx: Ctx, group: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    ) -> list[dict[str, Any]]:
        """Every id tag by id (``group``: only that tag group's)."""
        if ctx.id_tags is not None:
            tags = await ctx.id_tags.list_tags(tag_group=group)
        else:
            tags = [(t, None) for t in await ctx.service.store.list_id_tags() if group is None]
        return [
            {"id_tag": t.id_tag, "status": t.status.value, "expiry": iso(t.expiry), "parent": t.parent,
             "group": g}
            for t, g in tags
        ]

    @app.delete("/api/id-tags/{id_tag}", dependencies=secured, tags=["id tags"], status_code=204)
    async def delete_id_tag(id_tag: str, ctx: Ctx) -> Response:
        if not await ctx.service.store.delete_id_tag(id_tag):
            raise ApiError(404, "not_found", f"id tag {id_tag!r} not found")
        ctx.bus.publish(IdTagsChanged(id_tags=(id_tag,)))
        return Response(status_code=204)

    @app.get("/api/security-events", dependencies=secured, tags=["chargers"])
    async def security_events(ctx: Ctx, charger_id: str | None = None) -> list[dict[str, Any]]:
        rows = await ctx.service.store.list_security_events(charger_id)
        return [{k: (iso(v) if isinstance(v, datetime) else v) for k, v in r.items()} for r in rows]

    app.include_router(pages_router(secured))
    app.include_router(events_router(secured))
    app.include_router(feeders_router(secured))
    app.include_router(alarms_router(secured))
    app.include_router(security_router(secured))
    app.include_router(audit_router(secured))
    app.include_router(sites_router(secured))
    app.include_router(tariffs_router(secured))
    app.include_router(uploads_router(secured))
    app.include_router(receiver_router())
    app.include_router(desired_config_router(secured))
    app.include_router(profiles_router(secured))
    app.include_router(display_router(secured))
    app.include_router(firmware_router(secured))
    app.include_router(local_lists_router(secured))
    app.include_router(reservations_router(secured))
    app.include_router(cluster_router(secured))
    app.include_router(console_router(ctx))
    return app
