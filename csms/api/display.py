"""2.0.1 display-message and monitoring routes: set, get (the station's reports collected) and clear
display messages; set and clear variable monitors, the monitoring base and level."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.profiles import ChargerId, command_error, utc
from csms.display.rules import (
    MAX_ID,
    DisplayInvalid,
    DisplayMessage,
    MessageFormat,
    MessageState,
    Monitor,
    MonitoringBase,
    MonitorType,
    Priority,
)
from csms.display.service import DisplayService
from csms.errors import ControlError
from csms.profiles.calls import VersionUnsupported
from csms.profiles.rules import Answer


class DisplayMessageIn(BaseModel):
    id: int = Field(ge=1, le=MAX_ID)
    priority: Priority = Priority.NORMAL_CYCLE
    content: str = Field(min_length=1, max_length=512)
    format: MessageFormat = MessageFormat.UTF8
    language: str | None = Field(None, min_length=1, max_length=8)
    state: MessageState | None = Field(None, description="show only in this state (default: any)")
    start: datetime | None = None
    end: datetime | None = None
    transaction_id: str | None = Field(None, min_length=1, max_length=36)

    def message(self) -> DisplayMessage:
        return DisplayMessage(
            message_id=self.id, priority=self.priority, content=self.content, format=self.format,
            language=self.language, state=self.state, start=utc(self.start), end=utc(self.end),
            transaction_id=self.transaction_id,
        )


class MonitorIn(BaseModel):
    component: str = Field(min_length=1, max_length=50)
    component_instance: str | None = Field(None, max_length=50)
    evse_id: int | None = Field(None, ge=1, le=MAX_ID)
    connector_id: int | None = Field(None, ge=1, le=MAX_ID)
    variable: str = Field(min_length=1, max_length=50)
    variable_instance: str | None = Field(None, max_length=50)
    type: MonitorType
    value: float = Field(description="threshold, delta, or the period in seconds")
    severity: int = Field(5, description="0 (danger) .. 9 (debug)")
    transaction: bool = Field(False, description="only during a transaction")
    id: int | None = Field(None, ge=0, le=MAX_ID, description="replace this monitor")

    def monitor(self) -> Monitor:
        return Monitor(
            component=self.component, variable=self.variable, type=self.type, value=self.value,
            severity=self.severity, component_instance=self.component_instance,
            variable_instance=self.variable_instance, evse_id=self.evse_id, connector_id=self.connector_id,
            transaction=self.transaction, monitor_id=self.id,
        )


class MonitorsIn(BaseModel):
    monitors: list[MonitorIn] = Field(min_length=1, max_length=100)


class BaseIn(BaseModel):
    base: MonitoringBase


class LevelIn(BaseModel):
    severity: int = Field(description="report monitors of this severity or worse (0..9)")


def _service(request: Request) -> DisplayService:
    ctx: ApiContext = request.app.state.ctx
    if ctx.display is None:
        raise HTTPException(404, "display messages and monitoring are not running")
    return ctx.display


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


Display = Annotated[DisplayService, Depends(_service)]
Ctx = Annotated[ApiContext, Depends(_ctx)]


def _answer(charger_id: str, answer: Answer, **extra: Any) -> dict[str, Any]:
    return {"charger_id": charger_id, **extra, "status": answer.status, "detail": answer.detail}


async def _error(ctx: ApiContext, charger_id: str, exc: Exception, invalid: str) -> ApiError:
    if isinstance(exc, VersionUnsupported):
        return ApiError(409, "unsupported_version", str(exc))
    if isinstance(exc, DisplayInvalid):
        return ApiError(400, invalid, str(exc))
    assert isinstance(exc, ControlError)
    return await command_error(ctx, charger_id, exc)


_FAILS = (VersionUnsupported, DisplayInvalid, ControlError)


def display_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/chargers/{charger_id}", dependencies=secured)

    @router.post("/display-messages", tags=["display messages"])
    async def set_display_message(
        charger_id: ChargerId, body: DisplayMessageIn, display: Display, ctx: Ctx
    ) -> dict[str, Any]:
        """SetDisplayMessage (2.0.1); ``status`` is the station's answer (Accepted, Rejected,
        NotSupportedMessageFormat, NotSupportedPriority, NotSupportedState, UnknownTransaction)."""
        try:
            answer = await display.set_message(charger_id, body.message())
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_display_message") from None
        return _answer(charger_id, answer, id=body.id)

    @router.get("/display-messages", tags=["display messages"])
    async def get_display_messages(
        charger_id: ChargerId, display: Display, ctx: Ctx,
        id: Annotated[list[int] | None, Query(max_length=50)] = None,
        priority: Priority | None = None, state: MessageState | None = None,
        wait_s: Annotated[float, Query(ge=0, le=30)] = 5.0,
    ) -> dict[str, Any]:
        """GetDisplayMessages (2.0.1) and the messages the station then reports (NotifyDisplayMessages
        with the same ``request_id``), collected for up to ``wait_s``. ``status`` Unknown: it has none
        matching. ``complete`` false: the last report had not come in time (the reports also land in
        the station's events)."""
        ids = tuple(id or ())
        if any(not 1 <= i <= MAX_ID for i in ids):
            raise ApiError(400, "invalid_display_message", f"id: each must be 1..{MAX_ID}")
        try:
            report = await display.get_messages(charger_id, ids=ids, priority=priority, state=state,
                                                wait_s=wait_s)
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_display_message") from None
        return {**_answer(charger_id, report.answer), "request_id": report.request_id,
                "complete": report.complete, "messages": report.messages}

    @router.delete("/display-messages/{message_id}", tags=["display messages"])
    async def clear_display_message(
        charger_id: ChargerId, message_id: Annotated[int, Path(ge=1, le=MAX_ID)], display: Display, ctx: Ctx,
    ) -> dict[str, Any]:
        """ClearDisplayMessage (2.0.1): Accepted, or Unknown (no such message)."""
        try:
            answer = await display.clear_message(charger_id, message_id)
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_display_message") from None
        return _answer(charger_id, answer, id=message_id)

    @router.post("/monitors", tags=["monitoring"])
    async def set_monitors(
        charger_id: ChargerId, body: MonitorsIn, display: Display, ctx: Ctx
    ) -> dict[str, Any]:
        """SetVariableMonitoring (2.0.1); one result per monitor, in order: ``status`` (Accepted,
        UnknownComponent, UnknownVariable, UnsupportedMonitorType, Rejected, Duplicate) and the
        monitor's ``id`` when accepted."""
        try:
            results = await display.set_monitors(charger_id, tuple(m.monitor() for m in body.monitors))
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_monitor") from None
        return {"charger_id": charger_id, "results": [
            {"id": r.monitor_id, "status": r.status, "detail": r.detail, "component": r.monitor.component,
             "variable": r.monitor.variable, "type": r.monitor.type.value, "severity": r.monitor.severity}
            for r in results]}

    @router.delete("/monitors/{monitor_id}", tags=["monitoring"])
    async def clear_monitor(
        charger_id: ChargerId, monitor_id: Annotated[int, Path(ge=0, le=MAX_ID)], display: Display, ctx: Ctx,
    ) -> dict[str, Any]:
        """ClearVariableMonitoring (2.0.1): Accepted, Rejected (a hard-wired monitor) or NotFound."""
        try:
            answer = await display.clear_monitor(charger_id, monitor_id)
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_monitor") from None
        return _answer(charger_id, answer, id=monitor_id)

    @router.post("/monitoring-base", tags=["monitoring"])
    async def set_monitoring_base(
        charger_id: ChargerId, body: BaseIn, display: Display, ctx: Ctx
    ) -> dict[str, Any]:
        """SetMonitoringBase (2.0.1): All, FactoryDefault or HardWiredOnly (the last two remove the
        custom monitors)."""
        try:
            answer = await display.set_base(charger_id, body.base)
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_monitor") from None
        return _answer(charger_id, answer, base=body.base.value)

    @router.post("/monitoring-level", tags=["monitoring"])
    async def set_monitoring_level(
        charger_id: ChargerId, body: LevelIn, display: Display, ctx: Ctx
    ) -> dict[str, Any]:
        """SetMonitoringLevel (2.0.1): events of monitors less severe than ``severity`` are not sent."""
        try:
            answer = await display.set_level(charger_id, body.severity)
        except _FAILS as exc:
            raise await _error(ctx, charger_id, exc, "invalid_monitor") from None
        return _answer(charger_id, answer, severity=body.severity)

    return router
