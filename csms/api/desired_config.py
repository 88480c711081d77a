"""Desired configuration routes: sets per group (and the default for every station), the
stations' kept answers, live drift reports and per-group status counts."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, Request, Response

from csms.api.context import ApiContext
from csms.api.errors import ApiError, from_control_error
from csms.api.views import iso
from csms.core.sites import check_group_name
from csms.desired_config.rules import DEFAULT, DesiredSet, KeyResult, parse_set
from csms.desired_config.service import DesiredConfigService
from csms.errors import ControlError

NEXT_CURSOR = "X-Next-Cursor"
GroupName = Annotated[str, Path(max_length=64)]
ChargerId = Annotated[str, Path(max_length=48)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=64)]


def _service(request: Request) -> DesiredConfigService:
    ctx: ApiContext = request.app.state.ctx
    if ctx.desired_config is None:
        raise ApiError(404, "not_found", "desired configuration is not running")
    return ctx.desired_config


Service = Annotated[DesiredConfigService, Depends(_service)]


def _group(name: str) -> str:
    try:
        return check_group_name(name)
    except ValueError as exc:
        raise ApiError(400, "invalid_group", str(exc)) from None


def set_view(desired: DesiredSet) -> dict[str, Any]:
    """``{group, priority, ocpp1.6: {key: value}, ocpp2.0.1: [{component, ..., value, key}], updated_at}``;
    the default set's group is ``*``."""
    return {
        "group": desired.group, "priority": desired.priority, "ocpp1.6": dict(desired.keys),
        "ocpp2.0.1": [v.to_json() for v in desired.variables], "updated_at": iso(desired.updated_at),
    }


def result_view(result: KeyResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {"value": result.value, "status": result.status.value, "detail": result.detail,
            "at": iso(result.at)}


async def _registered(request: Request, charger_id: str) -> None:
    ctx: ApiContext = request.app.state.ctx
    if charger_id not in ctx.service.live:
        raise ApiError(404, "not_registered", f"charger {charger_id!r} is not registered")


def desired_config_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api", tags=["desired configuration"], dependencies=secured)

    async def put(service: DesiredConfigService, group: str, body: Any, response: Response) -> dict[str, Any]:
        try:
            desired = parse_set(group, body)
        except ValueError as exc:
            raise ApiError(400, "invalid_payload", str(exc)) from None
        kept, created, applying = await service.put(desired)
        response.status_code = 201 if created else 200
        return {**set_view(kept), "applying_to": applying}

    def get(service: DesiredConfigService, group: str) -> dict[str, Any]:
        desired = service.sets.get(group)
        if desired is None:
            what = "the default set" if group == DEFAULT else f"group {group!r}"
            raise ApiError(404, "not_found", f"{what} has no desired configuration")
        return set_view(desired)

    async def delete(service: DesiredConfigService, group: str) -> Response:
        if not await service.delete(group):
            what = "the default set" if group == DEFAULT else f"group {group!r}"
            raise ApiError(404, "not_found", f"{what} has no desired configuration")
        return Response(status_code=204)

    @router.get("/desired-config")
    async def list_sets(service: Service, response: Response, limit: Limit = 100,
                        cursor: Cursor = None) -> list[dict[str, Any]]:
        """Every set by group (the default, ``*``, first); a full page sets ``X-Next-Cursor``."""
        names = sorted(g for g in service.sets if cursor is None or g > cursor)[:limit]
        if len(names) == limit:
            response.headers[NEXT_CURSOR] = names[-1]
        return [set_view(service.sets[g]) for g in names]

    @router.put("/desired-config/default", status_code=201)
    async def put_default(
        service: Service, response: Response, body: Annotated[Any, Body()]
    ) -> dict[str, Any]:
        """The set for every station (lowest precedence); 201 created, 200 replaced."""
        return await put(service, DEFAULT, body, response)

    @router.get("/desired-config/default")
    async def get_default(service: Service) -> dict[str, Any]:
        return get(service, DEFAULT)

    @router.delete("/desired-config/default", status_code=204)
    async def delete_default(service: Service) -> Response:
        return await delete(service, DEFAULT)

    @router.put("/groups/{name}/desired-config", status_code=201)
    async def put_group(name: GroupName, service: Service, response: Response,
                        body: Annotated[Any, Body()]) -> dict[str, Any]:
        """Create (201) or replace (200) the group's set and apply it to its connected members;
        ``applying_to`` says how many."""
        return await put(service, _group(name), body, response)

    @router.get("/groups/{name}/desired-config")
    async def get_group(name: GroupName, service: Service) -> dict[str, Any]:
        return get(service, _group(name))

    @router.delete("/groups/{name}/desired-config", status_code=204)
    async def delete_group(name: GroupName, service: Service) -> Response:
        """Forget the set; values already on the stations stay."""
        return await delete(service, _group(name))

    @router.get("/groups/{name}/config-status")
    async def group_status(
        name: GroupName, service: Service, response: Response, limit: Limit = 100,
        cursor: Annotated[str | None, Query(max_length=48)] = None,
    ) -> list[dict[str, Any]]:
        """Per member (by id): counts of its desired values by their last kept answer; no station is asked."""
        page = await service.group_status(_group(name), after=cursor, limit=limit)
        if not page and cursor is None and name not in service.sets:
            raise ApiError(404, "not_found",
                           f"group {name!r} has neither members nor a desired configuration")
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = page[-1].station_id
        return [{"charger_id": s.station_id, "protocol": s.protocol.value if s.protocol else None,
                 "connected": s.connected, "desired": s.desired, **s.counts} for s in page]

    @router.get("/chargers/{charger_id}/config-results")
    async def config_results(charger_id: ChargerId, service: Service, request: Request) -> dict[str, Any]:
        """The station's last answer per key: ``{key: {value, status, detail, at}}``."""
        await _registered(request, charger_id)
        kept = (await service.store.results([charger_id]))[charger_id]
        return {key: result_view(kept[key]) for key in sorted(kept)}

    @router.get("/chargers/{charger_id}/config-drift")
    async def config_drift(charger_id: ChargerId, service: Service, request: Request) -> dict[str, Any]:
        """Reads the station's values live (GetConfiguration / GetVariables) and compares each desired
        key: ``in_sync``, ``drifted``, ``missing`` or ``not_supported``."""
        await _registered(request, charger_id)
        try:
            version, entries = await service.drift(charger_id)
        except ControlError as exc:
            raise from_control_error(exc) from None
        return {
            "charger_id": charger_id, "protocol": version.value,
            "drifted": sum(1 for e in entries if e.status.value != "in_sync"),
            "keys": [{"key": e.key, "desired": e.desired, "actual": e.actual, "status": e.status.value,
                      "source": e.source, "last_result": result_view(e.last_result)} for e in entries],
        }

    return router
