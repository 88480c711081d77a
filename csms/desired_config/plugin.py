"""The desired-configuration plugin: the service on the bus (boots, connections) over the store's groups."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import structlog

from csms.core.events import StationBooted, StationConnected
from csms.core.targets import TargetResolver, Targets
from csms.desired_config.rules import DEFAULT
from csms.desired_config.service import DesiredConfigService
from csms.desired_config.station import OcppStationConfig
from csms.plugins import Cleanup, PluginContext
from csms.store.desired_config import SqlDesiredConfig
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.desired_config")


class StoreGroups:
    """``GroupDirectory`` over the store's groups; the default set's members are every registered station."""

    def __init__(
        self, store: SqlDesiredConfig, targets: TargetResolver, registered: Mapping[str, object]
    ) -> None:
        self._store = store
        self._targets = targets
        self._registered = registered

    async def groups_of(self, station_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        return await self._store.memberships(station_ids)

    async def members(self, group: str) -> list[str]:
        if group == DEFAULT:
            return sorted(self._registered)
        return await self._targets.resolve(Targets(group=group))


async def desired_config_plugin(ctx: PluginContext) -> Cleanup | None:
    """Always on: without sets it sends nothing."""
    live = ctx.service.live

    def protocol_of_registered(station_id: str) -> OcppVersion | None:
        station = live.get(station_id)
        return station.protocol if station is not None else None

    store = SqlDesiredConfig(ctx.db)
    service = DesiredConfigService(
        store, OcppStationConfig(ctx.commands, timeout_s=ctx.settings.call_timeout_s),
        StoreGroups(store, ctx.targets, live), ctx.clock,
        protocol_of_registered=protocol_of_registered,
    )
    await service.load()
    unsubscribe = ctx.bus.subscribe(service.on_event, StationBooted, StationConnected)
    ctx.parts.desired_config = service
    ctx.spawn(service.refresh_forever(), "desired-config-refresh")  # sets kept through other core nodes
    log.info("desired configuration on", sets=len(service.sets))

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.desired_config = None
        await service.close()

    return cleanup
