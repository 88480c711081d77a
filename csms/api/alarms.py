"""Alarm routes: list (active or all, paged), acknowledge, and each alarm's history."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from csms.api.auth import guard_of
from csms.api.context import ApiContext
from csms.api.views import iso
from csms.core.alarms import Alarm, AlarmTransition, fields

NEXT_CURSOR = "X-Next-Cursor"


class AlarmsView(Protocol):
    """What the routes need of the alarm service (``csms.alarms.service.AlarmService``)."""

    async def get(self, alarm_id: int) -> Alarm | None: ...

    async def list_alarms(
        self, *, active: bool, charger_id: str | None = None, limit: int = 100, before_id: int | None = None
    ) -> list[Alarm]: ...

    async def history(self, alarm_id: int) -> list[AlarmTransition]: ...

    async def acknowledge(self, alarm_id: int, actor: str) -> Alarm | None: ...


def alarm_view(alarm: Alarm) -> dict[str, Any]:
    """``{id, charger_id, kind, severity, state, subject, raised_at, cleared_at, acknowledged_at,
    acknowledged_by, detail}``, times in RFC 3339 UTC."""
    return {k: iso(v) if isinstance(v, datetime) else v for k, v in fields(alarm).items()}


def _alarms(request: Request) -> AlarmsView:
    ctx: ApiContext = request.app.state.ctx
    if ctx.alarms is None:
        raise HTTPException(404, "alarms are disabled (alarms.enabled)")
    return ctx.alarms


Alarms = Annotated[AlarmsView, Depends(_alarms)]


MAX_ID = 2**63 - 1  # ids are 64-bit in every store
AlarmId = Annotated[int, Path(ge=1, le=MAX_ID)]


async def _known(alarms: AlarmsView, alarm_id: int) -> Alarm:
    alarm = await alarms.get(alarm_id)
    if alarm is None:
        raise HTTPException(404, f"alarm {alarm_id} not found")
    return alarm


def alarms_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/alarms", tags=["alarms"], dependencies=secured)

    @router.get("")
    async def list_alarms(
        alarms: Alarms, response: Response, state: Literal["active", "all"] = "active",
        charger_id: str | None = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Newest first. A full page carries the next page's ``cursor`` in ``X-Next-Cursor``."""
        page = await alarms.list_alarms(active=state == "active", charger_id=charger_id, limit=limit,
                                 before_id=cursor)
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = str(page[-1].id)
        return [alarm_view(a) for a in page]

    @router.get("/{alarm_id}")
    async def get_alarm(alarm_id: AlarmId, alarms: Alarms) -> dict[str, Any]:
        return alarm_view(await _known(alarms, alarm_id))

    @router.post("/{alarm_id}/ack")
    async def ack_alarm(alarm_id: AlarmId, alarms: Alarms, request: Request) -> dict[str, Any]:
        """Acknowledge (idempotent: an acknowledged alarm is returned unchanged); ``acknowledged_by``
        is the caller's role (``operator``)."""
        role = guard_of(request).check(request)
        alarm = await alarms.acknowledge(alarm_id, role.value)
        if alarm is None:
            raise HTTPException(404, f"alarm {alarm_id} not found")
        return alarm_view(alarm)

    @router.get("/{alarm_id}/history")
    async def alarm_history(alarm_id: AlarmId, alarms: Alarms) -> list[dict[str, Any]]:
        """Every transition, oldest first: ``{action: raised|acknowledged|cleared, at, actor}``."""
        await _known(alarms, alarm_id)
        return [{"action": h.action.value, "at": iso(h.at), "actor": h.actor}
                for h in await alarms.history(alarm_id)]

    return router
