"""Feeder routes: the balancer's tree, and run-time limit changes (e.g. grid curtailment)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, Field

from csms.api.context import ApiContext, BalancerView
from csms.balancer.topology import TopologyError


class LimitIn(BaseModel):
    limit_a: float | None = Field(..., ge=0, description="per-phase limit in amperes; null removes it")


def _balancer(request: Request) -> BalancerView:
    ctx: ApiContext = request.app.state.ctx
    service = ctx.balancer
    if service is None:
        raise HTTPException(404, "load balancing is not configured (see docs/load-balancing.md)")
    return service


Balancer = Annotated[BalancerView, Depends(_balancer)]


def feeders_router(secured: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/feeders", tags=["feeders"], dependencies=secured)

    @router.get("")
    async def list_feeders(service: Balancer) -> list[dict[str, Any]]:
        """Every node: id, parent_id, limit_a, measured_a, allocated_a, headroom_a, chargers."""
        return service.feeders_view(rounded=True)

    @router.put("/{node_id}/limit")
    async def put_limit(
        node_id: str, body: LimitIn, service: Balancer
    ) -> dict[str, Any]:
        """Change a node's per-phase limit; applied at once (within one tick)."""
        try:
            service.set_limit(node_id, body.limit_a)
        except KeyError:
            raise HTTPException(404, f"no feeder node {node_id!r}") from None
        except TopologyError as exc:
            raise HTTPException(400, str(exc)) from None
        await service.rebalance()
        return next(n for n in service.feeders_view(rounded=True) if n["id"] == node_id)

    return router
