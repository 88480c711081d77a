"""Wire the balancer into a running CSMS: topology from config, events in, profiles out."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog

from csms.balancer.allocate import Allocation, AllocationSettings
from csms.balancer.service import BalancerService
from csms.balancer.topology import TopologyError, topology_from_config
from csms.bus import Bus
from csms.core.events import Event, FeederLimitSignal, FeederLoadChanged, FeederMeterReading
from csms.errors import ConfigError
from csms.plugins import Cleanup, PluginContext

log = structlog.get_logger("csms.balancer")


async def balancer_plugin(ctx: PluginContext) -> Cleanup | None:
    """Balance the configured feeder tree (``balancer.enabled`` with nodes); ``ctx.parts.balancer``."""
    cfg = ctx.settings.balancer
    if not cfg.enabled or not cfg.nodes:
        log.info("load balancing not configured: no feeder limits are enforced")
        return None
    try:
        topology = topology_from_config(
            {"nodes": list(cfg.nodes), "evses": list(cfg.evses), "phase_voltage_v": cfg.phase_voltage_v}
        )
    except TopologyError as exc:
        raise ConfigError(f"balancer: {exc}") from None
    service = BalancerService(
        topology,
        ctx.control,
        ev_max_a=ctx.service.ev_max_current_a,
        tick_s=cfg.tick_s,
        min_interval_per_station_s=cfg.min_interval_per_station_s,
        settings=AllocationSettings(
            resolution_a=cfg.resolution_a, hysteresis_a=cfg.hysteresis_a,
            rotation_period_s=cfg.rotation_period_s, headroom_step_a=cfg.headroom_step_a,
            settle_s=cfg.settle_s,
        ),
        on_allocation=lambda alloc: _publish_loads(ctx.bus, service, alloc),
        meter_max_age_s=cfg.meter_max_age_s,
    )
    service.attach(ctx.all_events())  # the leader balances every core's stations
    ctx.bus.subscribe(lambda e: apply_grid_signal(service, e), FeederLimitSignal, FeederMeterReading)
    ctx.parts.balancer = service
    ctx.metrics.gauge_callback("csms_balancer_ticks", "Balancer allocations computed", lambda: service.ticks)
    ctx.metrics.gauge_callback(
        "csms_balancer_profiles_sent", "Charging profiles accepted", lambda: service.sent_count
    )
    ctx.metrics.gauge_callback(
        "csms_balancer_profiles_failed", "Charging profiles rejected or failed", lambda: service.failed_count
    )
    ctx.metrics.gauge_callback(
        "csms_balancer_allocation_seconds", "Duration of the last rebalance", lambda: service.last_duration_s
    )
    ctx.spawn(service.run(elected=ctx.elected("balancer")), "balancer")
    log.info("load balancing on", nodes=len(topology.nodes), evses=len(topology.evses))
    return None


def apply_grid_signal(service: BalancerService, event: Event) -> None:
    """A feeder limit signal or meter reading from outside (MQTT): applied, or logged if invalid."""
    try:
        if isinstance(event, FeederLimitSignal):
            service.set_limit(event.node_id, event.limit_a)
        elif isinstance(event, FeederMeterReading):
            age_s = (datetime.now(UTC) - event.ts).total_seconds()
            service.meter_reading(event.node_id, event.current_a, age_s=age_s)
    except (KeyError, ValueError) as exc:
        log.warning("external feeder signal ignored", node_id=getattr(event, "node_id", None), error=str(exc))


def _publish_loads(bus: Bus, service: BalancerService, alloc: Allocation) -> None:
    if not bus.wants(FeederLoadChanged):
        return
    for load in service.feeder_loads():
        bus.publish(FeederLoadChanged.of(load))
