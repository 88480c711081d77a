"""``GET /api/cluster``: this node's id and who holds each singleton loop's lease (``csms.cluster``)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.cluster.lease import Elector


def _elector(request: Request) -> Elector:
    ctx: ApiContext = request.app.state.ctx
    if ctx.cluster is None:
        raise ApiError(404, "not_found", "no singleton election in this process")
    return ctx.cluster


Cluster = Annotated[Elector, Depends(_elector)]


def cluster_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/cluster", tags=["cluster"], dependencies=secured)

    @router.get("")
    async def cluster(elector: Cluster) -> dict[str, Any]:
        """``{node_id, leases: [{name, holder, token, expires_at, held_here}]}``: one lease per
        singleton loop (at most 200); ``expires_at`` is null where one process runs
        everything (SQLite)."""
        leases = await elector.leases()
        return {
            "node_id": elector.node_id,
            "leases": [
                {"name": x.name, "holder": x.holder, "token": x.token,
                 "expires_at": iso(x.expires_at),
                 "held_here": x.held_here}
                for x in leases
            ],
        }

    return router
