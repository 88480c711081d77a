"""``GET /api/cluster``: this node's id and who holds each singleton loop's lease (``csms.cluster``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request

from csms.api.context import ApiContext
from csms.api.errors import ApiError
from csms.api.views import iso
from csms.cluster.core_node import BrokerCore
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
    async def cluster(elector: Cluster, request: Request) -> dict[str, Any]:
        """``{node_id, leases: [{name, holder, token, expires_at, held_here}]}``: one lease per
        singleton loop (at most 200); ``expires_at`` is null where one process runs
        everything (SQLite). A core node on a broker adds ``endpoint``, ``broker_connected`` and
        ``nodes``: every gateway and core node the broker announced, ``alive`` or not, with the
        stations each serves now (``stations``)."""
        leases = await elector.leases()
        ctx: ApiContext = request.app.state.ctx
        out: dict[str, Any] = {"node_id": elector.node_id}
        if ctx.node is not None:
            out["endpoint"] = ctx.node.endpoint
            out["broker_connected"] = ctx.node.client.connected.is_set()
            out["nodes"] = await _nodes(ctx.node)
        return out | {
            "leases": [
                {"name": x.name, "holder": x.holder, "token": x.token,
                 "expires_at": iso(x.expires_at),
                 "held_here": x.held_here}
                for x in leases
            ],
        }

    return router


async def _nodes(node: BrokerCore) -> list[dict[str, Any]]:
    try:
        counts = await node.presence.counts()
    except Exception:  # the database is away: the nodes without their station counts
        counts = {}
    per: dict[str, int] = {}
    for (core, gateway), n in counts.items():
        per[core] = per.get(core, 0) + n
        if gateway != core:
            per[gateway] = per.get(gateway, 0) + n
    return [
        {"node_id": n.node_id, "endpoint": n.endpoint, "role": n.role, "alive": n.online,
         "since": iso(datetime.fromtimestamp(n.at, UTC)) if n.at else None,
         "stations": per.get(n.endpoint, 0) if n.online else 0}
        for n in node.nodes()
    ]
