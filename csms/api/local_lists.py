"""Local authorization list routes: policies per station group (and the default), each station's
list state, and a forced sync.

A policy body is ``{"tags": "all"}`` or ``{"tags": {"tag_group": "fleet-a"}}``. Lists are paged by
key: a full page carries the next page's ``cursor`` in ``X-Next-Cursor``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.outbound import absent
from csms.api.views import iso
from csms.core.model import IdTag
from csms.local_lists.rules import DEFAULT_SCOPE, Policy
from csms.local_lists.service import SyncOutcome, SyncRequest
from csms.ocpp.handshake import MAX_STATION_ID
from csms.store.local_lists import StationListState

NEXT_CURSOR = "X-Next-Cursor"
NAME_MAX = 64
NAME_PATTERN = r"^[^\s/\x00-\x1f\x7f][^/\x00-\x1f\x7f]*$"  # no '/', no control characters, no leading space
Name = Annotated[str, Field(min_length=1, max_length=NAME_MAX, pattern=NAME_PATTERN)]
GroupName = Annotated[str, Path(min_length=1, max_length=NAME_MAX)]
ChargerId = Annotated[str, Path(min_length=1, max_length=MAX_STATION_ID)]


class IdTagRegistry(Protocol):
    """Id tags with their tag group (``csms.store.local_lists.SqlLocalLists``)."""

    async def put_tag(self, tag: IdTag, tag_group: str | None) -> bool: ...

    async def list_tags(
        self, *, tag_group: str | None = None, after: str | None = None, limit: int | None = None,
    ) -> list[tuple[IdTag, str | None]]: ...


class LocalListsView(Protocol):
    """What the routes need of ``csms.local_lists.service.LocalListService``."""

    async def put_policy(self, policy: Policy) -> bool: ...

    async def delete_policy(self, scope: str) -> bool: ...

    async def policy(self, scope: str) -> Policy | None: ...

    async def policies(self, *, after: str | None = None, limit: int | None = None) -> list[Policy]: ...

    async def states(self, *, after: str | None = None, limit: int = 100) -> list[StationListState]: ...

    async def state(self, station_id: str) -> StationListState | None: ...

    async def forget(self, station_id: str) -> None: ...

    async def sent_by_hand(self, station_id: str, detail: str) -> None: ...

    async def sync(self, request: SyncRequest) -> SyncOutcome: ...


class TagGroupIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tag_group: Name


class PolicyIn(BaseModel):
    """Which id tags the stations get: every one, or one tag group's."""

    model_config = ConfigDict(extra="forbid")
    tags: Literal["all"] | TagGroupIn


def policy_view(policy: Policy) -> dict[str, Any]:
    """``{group, tags, updated_at}``; ``group`` null is the default policy."""
    return {
        "group": policy.scope or None,
        "tags": "all" if policy.tag_group is None else {"tag_group": policy.tag_group},
        "updated_at": iso(policy.updated_at),
    }


def state_view(state: StationListState) -> dict[str, Any]:
    return {
        "charger_id": state.station_id, "version": state.version, "in_sync": state.in_sync,
        "entries": state.entries, "update_type": state.update_type, "synced_at": iso(state.synced_at),
        "attempted_at": iso(state.attempted_at), "error": state.error,
    }


def _lists(request: Request) -> LocalListsView:
    ctx: ApiContext = request.app.state.ctx
    if ctx.local_lists is None:
        raise ApiError(404, "not_found", "local lists are disabled (local_lists.enabled)")
    return ctx.local_lists


Lists = Annotated[LocalListsView, Depends(_lists)]
Limit = Annotated[int, Query(ge=1, le=1000)]
Cursor = Annotated[str | None, Query(max_length=NAME_MAX + 2)]


def _check_group(name: str) -> str:
    if not name.strip() or "/" in name or not name.isprintable():
        raise ApiError(400, "bad_request", "a group name is 1-64 printable characters without '/'")
    return name


def local_lists_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(tags=["local lists"], dependencies=secured)

    async def _put(scope: str, body: PolicyIn, lists: LocalListsView, response: Response) -> dict[str, Any]:
        tag_group = None if isinstance(body.tags, str) else body.tags.tag_group
        created = await lists.put_policy(Policy(scope, tag_group))
        response.status_code = 201 if created else 200
        return policy_view(await lists.policy(scope) or Policy(scope, tag_group))

    async def _get(scope: str, lists: LocalListsView, what: str) -> dict[str, Any]:
        found = await lists.policy(scope)
        if found is None:
            raise ApiError(404, "not_found", f"no local-list policy for {what}")
        return policy_view(found)

    async def _delete(scope: str, lists: LocalListsView, what: str) -> Response:
        if not await lists.delete_policy(scope):
            raise ApiError(404, "not_found", f"no local-list policy for {what}")
        return Response(status_code=204)

    @router.put("/api/groups/{name}/local-list", status_code=201,
                responses={200: {"description": "the group's policy was replaced"}})
    async def put_group_policy(
        name: GroupName, body: PolicyIn, lists: Lists, response: Response,
    ) -> dict[str, Any]:
        """Set which id tags the local lists of the group's stations hold; they are updated."""
        return await _put(_check_group(name), body, lists, response)

    @router.get("/api/groups/{name}/local-list")
    async def get_group_policy(name: GroupName, lists: Lists) -> dict[str, Any]:
        return await _get(_check_group(name), lists, f"group {name!r}")

    @router.delete("/api/groups/{name}/local-list", status_code=204)
    async def delete_group_policy(name: GroupName, lists: Lists) -> Response:
        """Stop managing the group's lists (stations keep what they hold)."""
        return await _delete(_check_group(name), lists, f"group {name!r}")

    @router.put("/api/local-list-policies/default", status_code=201,
                responses={200: {"description": "the default policy was replaced"}})
    async def put_default_policy(body: PolicyIn, lists: Lists, response: Response) -> dict[str, Any]:
        """The policy of every station no group policy covers."""
        return await _put(DEFAULT_SCOPE, body, lists, response)

    @router.get("/api/local-list-policies/default")
    async def get_default_policy(lists: Lists) -> dict[str, Any]:
        return await _get(DEFAULT_SCOPE, lists, "the default")

    @router.delete("/api/local-list-policies/default", status_code=204)
    async def delete_default_policy(lists: Lists) -> Response:
        return await _delete(DEFAULT_SCOPE, lists, "the default")

    @router.get("/api/local-list-policies")
    async def list_policies(
        lists: Lists, response: Response, limit: Limit = 100, cursor: Cursor = None,
    ) -> list[dict[str, Any]]:
        """Every policy: the default (``group`` null) first, then by group name."""
        page = await lists.policies(after=_scope_of_cursor(cursor), limit=limit)
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = "g:" + page[-1].scope
        return [policy_view(p) for p in page]

    @router.get("/api/local-lists")
    async def list_station_lists(
        lists: Lists, response: Response, limit: Limit = 100,
        cursor: Annotated[str | None, Query(max_length=MAX_STATION_ID)] = None,
    ) -> list[dict[str, Any]]:
        """Each station's list: the version it accepted last, its entries and whether it is current."""
        page = await lists.states(after=cursor, limit=limit)
        if len(page) == limit:
            response.headers[NEXT_CURSOR] = page[-1].station_id
        return [state_view(s) for s in page]

    @router.get("/api/chargers/{charger_id}/local-list")
    async def get_station_list(charger_id: ChargerId, lists: Lists) -> dict[str, Any]:
        state = await lists.state(charger_id)
        if state is None:
            raise ApiError(404, "not_found", f"no local list was sent to charger {charger_id!r}")
        return state_view(state)

    @router.post("/api/chargers/{charger_id}/local-list/sync")
    async def sync_station_list(
        charger_id: ChargerId, lists: Lists, ctx: Annotated[ApiContext, Depends(_ctx)],
        full: bool = False,
    ) -> dict[str, Any]:
        """Check the station's version and send what it lacks now (``full=true``: the whole list).

        Answers the outcome; a station that refused or failed answers 200 with ``ok`` false
        (and the ``local_list_out_of_sync`` alarm)."""
        if ctx.control.protocol_of(charger_id) is None:
            raise await absent(ctx, charger_id)
        outcome = await lists.sync(SyncRequest(charger_id, check_version=True, force_full=full))
        return {
            "charger_id": outcome.station_id, "ok": outcome.ok, "reason": outcome.reason,
            "version": outcome.version, "update_type": outcome.update_type, "messages": outcome.messages,
            "items": outcome.items, "detail": outcome.detail,
        }

    return router


def _ctx(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx


def _scope_of_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    if not cursor.startswith("g:"):
        raise ApiError(400, "bad_request", "cursor is not one this listing returned")
    return cursor[2:]
