"""The audit trail of operator commands: ``audited`` records them, ``GET /api/audit`` pages them.

Every state-changing request (not GET/HEAD/OPTIONS) of a route that depends on ``audited``
is recorded once it is answered: actor (``token:<role>``, ``console:<role>`` for the
console's cookie, ``local`` when the API needs no token), action (the OCPP action or
console intent in the path, else the route's name), target (the path's ids, or the body's
``id_tag``), the sha256 of the body's canonical JSON with passwords redacted, and the
result: ``ok`` or the error code answered.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
import structlog
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from csms.api.auth import guard_of
from csms.api.console.auth import COOKIE, SAFE_METHODS
from csms.api.context import ApiContext
from csms.api.errors import ApiError, error_of
from csms.core.audit import AuditEntry, AuditLog, digest
from csms.errors import StoreUnavailable
from ocppj.timestamps import format_datetime

log = structlog.get_logger("csms.api.audit")

_TARGETS = ("charger_id", "station_id", "id_tag", "node_id", "alarm_id", "reservation_id")
_NAMED_BY = ("action", "intent")
REDACTED = "<redacted>"


class AuditItem(BaseModel):
    id: int
    at: str
    actor: str
    action: str
    target: str
    digest: str
    result: str


class AuditPage(BaseModel):
    items: list[AuditItem]
    next_cursor: str | None


def audit_log(ctx: ApiContext) -> AuditLog | None:
    """The store's audit log, None when the store keeps none."""
    store = ctx.service.store
    return store if isinstance(store, AuditLog) else None


def actor_of(request: Request) -> str:
    guard = guard_of(request)
    if not guard.required:
        return "local"
    role = guard.role_of(request)
    name = role.value if role is not None else "unknown"
    presented = "authorization" in request.headers or "x-api-token" in request.headers
    return f"console:{name}" if not presented and COOKIE in request.cookies else f"token:{name}"


def redacted(value: Any) -> Any:
    """``value`` with every password field's value replaced, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if "password" in str(k).lower() else redacted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def _parsed(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _entry(request: Request, body: bytes, result: str, ctx: ApiContext) -> AuditEntry:
    params = request.path_params
    route = request.scope.get("route")
    named = getattr(route, "name", request.url.path)
    action = next((str(params[k]) for k in _NAMED_BY if k in params), named)
    parsed = _parsed(body)
    target = "/".join(str(params[k]) for k in _TARGETS if k in params)
    if not target and isinstance(parsed, dict):  # a body naming its charger (a reservation) or id tag
        target = next((parsed[k] for k in ("charger_id", "id_tag") if isinstance(parsed.get(k), str)), "")
    # a body that does not parse may still hold a secret: its digest is a constant, never its bytes
    hashed = digest(redacted(parsed)) if parsed is not None or not body else digest(b"<unparsable>")
    return AuditEntry(ctx.service.clock.now(), actor_of(request), action, target, hashed, result)


async def audited(request: Request) -> AsyncIterator[None]:
    """Check the caller (401/403/429 as ``csms.api.auth``), then record a state change once answered."""
    guard_of(request).check(request)
    if request.method in SAFE_METHODS:
        yield
        return
    body = await request.body()
    result = "ok"
    try:
        yield
    except Exception as exc:
        result = error_of(exc).error
        raise
    finally:
        ctx: ApiContext = request.app.state.ctx
        trail = audit_log(ctx)
        if trail is not None:
            try:
                await trail.record_audit(_entry(request, body, result, ctx))
            except StoreUnavailable as exc:
                log.error("audit entry not recorded", error=str(exc), path=request.url.path)


def audit_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["audit"], dependencies=secured)

    @router.get("/audit", response_model=AuditPage)
    async def list_audit(
        request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100, cursor: str | None = None,
    ) -> AuditPage:
        """Operator commands, newest first; pass ``next_cursor`` as ``cursor`` for the next page."""
        if cursor is not None and not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 18):
            raise ApiError(400, "bad_request", "cursor must be a next_cursor this API returned")
        ctx: ApiContext = request.app.state.ctx
        trail = audit_log(ctx)
        if trail is None:
            return AuditPage(items=[], next_cursor=None)
        entries = await trail.list_audit(limit=limit, before_id=int(cursor) if cursor else None)
        items = [
            AuditItem(id=e.id or 0, at=format_datetime(e.at, timespec="auto"), actor=e.actor, action=e.action,
                      target=e.target, digest=e.digest, result=e.result)
            for e in entries
        ]
        more = len(items) == limit and items[-1].id > 1
        return AuditPage(items=items, next_cursor=str(items[-1].id) if more else None)

    return router
