"""The operator API: chargers, actions, transactions, id tags, health and metrics.

Every route reads the ``ApiContext`` from ``app.state.ctx``. When the API listens on
a non-loopback address, every ``/api`` route needs ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from csms.api.alarms import alarms_router
from csms.api.auth import guard_of
from csms.api.console.routes import console_router
from csms.api.context import ApiContext
from csms.api.events import events_router
from csms.api.feeders import feeders_router
from csms.api.pages import pages_router
from csms.api.security import security_router
from csms.api.views import charger_detail, iso, registered_view
from csms.core.model import AuthStatus, IdTag
from csms.core.service import LiveStation
from csms.errors import (
    CallErrorReceived,
    CallTimeout,
    PayloadInvalid,
    ResponseInvalid,
    StationNotConnected,
    StoreUnavailable,
    UnknownAction,
)
from csms.metrics import CONTENT_TYPE
from csms.ocpp.handshake import MAX_STATION_ID
from csms.security import passwords
from csms.security.lifecycle import sets_password
from ocppj import schemas


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


class ChargerIn(BaseModel):
    security_profile: int = Field(0, ge=0, le=3)
    password: str | None = Field(None, min_length=16, max_length=40)


def create_app(ctx: ApiContext) -> FastAPI:
    app = FastAPI(
        title="CSMS operator API",
        version="0.1.0",
        description="Chargers, CSMS-initiated OCPP actions, transactions and id tags.",
    )
    app.state.ctx = ctx
    secured = [Depends(require_token)]

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_r: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse({"detail": f"database unavailable: {exc}"}, status_code=503)

    @app.get("/healthz", tags=["ops"])
    async def healthz(ctx: Ctx) -> dict[str, Any]:
        return {"status": "ok", "connected_stations": len(ctx.registry)}

    @app.get("/metrics", tags=["ops"])
    async def metrics(ctx: Ctx) -> Response:
        return Response(ctx.metrics.render(), media_type=CONTENT_TYPE)

    @app.get("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"])
    async def get_charger(charger_id: str, ctx: Ctx) -> dict[str, Any]:
        view = await charger_detail(ctx, charger_id)
        if view is None:
            raise HTTPException(404, f"charger {charger_id!r} is not registered")
        return view

    @app.get("/api/chargers/{charger_id}/variables", dependencies=secured, tags=["chargers"])
    async def get_charger_variables(charger_id: str, ctx: Ctx) -> dict[str, str]:
        """The device variables the station last reported (2.0.1 NotifyReport), by key
        ``Component(instance)[evse.connector]/Variable(instance)/type``; ask for a fresh report
        with the ``GetBaseReport`` action."""
        live = ctx.service.live.get(charger_id)
        if live is None:
            raise HTTPException(404, f"charger {charger_id!r} is not registered")
        return dict(sorted(live.variables.items()))

    @app.put("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"])
    async def put_charger(charger_id: str, body: ChargerIn, ctx: Ctx) -> dict[str, Any]:
        """Register a station or change its security profile / password (write-only)."""
        if not charger_id.isprintable() or len(charger_id) > MAX_STATION_ID or "/" in charger_id:
            raise HTTPException(400, "charger id must be 1-48 printable characters without '/'")
        if body.security_profile >= 1 and body.password is None:
            existing = await ctx.service.store.get_password_hash(charger_id)
            if existing is None:
                raise HTTPException(400, "security_profile >= 1 needs a password")
        hashed = await asyncio.to_thread(passwords.hash_password, body.password) if body.password else None
        station = await ctx.service.store.upsert_station(
            charger_id, security_profile=body.security_profile, password_hash=hashed
        )
        ctx.service.live.setdefault(charger_id, LiveStation(charger_id))
        return registered_view(ctx, station)

    @app.delete("/api/chargers/{charger_id}", dependencies=secured, tags=["chargers"], status_code=204)
    async def delete_charger(charger_id: str, ctx: Ctx) -> Response:
        if not await ctx.service.store.delete_station(charger_id):
            raise HTTPException(404, f"charger {charger_id!r} is not registered")
        ctx.service.forget(charger_id)
        session = ctx.registry.get(charger_id)
        if session is not None:
            await session.close(1000, "deregistered")
        return Response(status_code=204)

    @app.post("/api/chargers/{charger_id}/actions/{action}", dependencies=secured, tags=["chargers"])
    async def charger_action(
        charger_id: str, action: str, payload: dict[str, Any], ctx: Ctx,
        timeout: Annotated[float | None, Query(gt=0, le=300)] = None,
    ) -> Any:
        """Send any CSMS-initiated OCPP action; the body is the payload in the station's version."""
        version = ctx.control.protocol_of(charger_id)
        if version is None:
            raise HTTPException(404, f"charger {charger_id!r} is not connected")
        if sets_password(action, payload):
            raise HTTPException(400, f"set passwords with POST /api/chargers/{charger_id}/password")
        try:
            return await ctx.control.call(charger_id, action, payload, timeout=timeout)
        except UnknownAction as exc:
            known = ", ".join(sorted(schemas.actions(version)))
            raise HTTPException(400, f"{exc}; known actions: {known}") from None
        except PayloadInvalid as exc:
            raise HTTPException(400, f"payload invalid for {action}: {exc}") from None
        except StationNotConnected as exc:
            raise HTTPException(404, str(exc)) from None
        except CallErrorReceived as exc:
            return JSONResponse(
                {"detail": "station answered with a CALLERROR", "code": exc.code,
                 "description": exc.description, "details": exc.details},
                status_code=502,
            )
        except ResponseInvalid as exc:
            raise HTTPException(502, str(exc)) from None
        except CallTimeout as exc:
            raise HTTPException(504, str(exc)) from None

    @app.post("/api/id-tags", dependencies=secured, tags=["id tags"], status_code=201)
    async def put_id_tag(body: IdTagIn, ctx: Ctx, response: Response) -> dict[str, Any]:
        created = await ctx.service.put_id_tag(IdTag(body.id_tag, body.status, body.expiry, body.parent))
        if not created:
            response.status_code = 200
        return body.model_dump(mode="json")

    @app.get("/api/id-tags", dependencies=secured, tags=["id tags"])
    async def list_id_tags(ctx: Ctx) -> list[dict[str, Any]]:
        return [
            {"id_tag": t.id_tag, "status": t.status.value, "expiry": iso(t.expiry), "parent": t.parent}
            for t in await ctx.service.store.list_id_tags()
        ]

    @app.delete("/api/id-tags/{id_tag}", dependencies=secured, tags=["id tags"], status_code=204)
    async def delete_id_tag(id_tag: str, ctx: Ctx) -> Response:
        if not await ctx.service.store.delete_id_tag(id_tag):
            raise HTTPException(404, f"id tag {id_tag!r} not found")
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
    app.include_router(console_router(ctx))
    return app
