"""The local-lists plugin: the service on the bus, its worker, and its metrics."""

from __future__ import annotations

from collections.abc import Sequence

import structlog
from prometheus_client import Counter

from csms.core.events import Event, IdTagsChanged, LocalListSynced, StationBooted, StationConnected
from csms.local_lists.ocpp import OcppListPort
from csms.local_lists.service import LocalListService
from csms.plugins import Cleanup, PluginContext
from csms.store.local_lists import SqlLocalLists
from csms.store.sites import SqlSites

log = structlog.get_logger("csms.local_lists")


async def local_lists_plugin(ctx: PluginContext) -> Cleanup | None:
    """Local lists on unless ``local_lists.enabled`` is false."""
    cfg = ctx.settings.local_lists
    if not cfg.enabled:
        log.info("local lists disabled")
        return None
    sites = SqlSites(ctx.db)
    sent = Counter("csms_local_list_items_sent", "Local list entries sent in accepted SendLocalList messages",
                   ["update_type"], registry=ctx.metrics.registry)
    failures = Counter("csms_local_list_sync_failures", "Local list updates that left a station out of sync",
                       registry=ctx.metrics.registry)

    async def groups_of(station_id: str) -> Sequence[str]:
        return (await sites.placement(station_id)).groups

    def on_sent(update_type: str, items: int) -> None:
        sent.labels(update_type).inc(items)

    service = LocalListService(
        SqlLocalLists(ctx.db), OcppListPort(ctx.commands, timeout_s=cfg.call_timeout_s), ctx.clock, cfg,
        groups_of=groups_of, connected=lambda: [s.station_id for s in ctx.sessions],
        publish=ctx.bus.publish, on_sent=on_sent,
    )

    def count_failure(ev: Event) -> None:
        if isinstance(ev, LocalListSynced) and not ev.ok:
            failures.inc()

    # Each core node syncs the stations it serves (``connected``): their boots and connections come
    # on its own bus; a change of id tags or policies made through any node reaches every node.
    unsubscribers = [
        ctx.bus.subscribe(service.on_event, StationBooted, StationConnected),
        ctx.all_events().subscribe(service.on_event, IdTagsChanged),
        ctx.bus.subscribe(count_failure, LocalListSynced),
    ]
    ctx.parts.local_lists = service
    ctx.spawn(service.run(), "local-lists")  # the reconciliation too: every node over its own stations

    async def cleanup() -> None:
        for unsubscribe in unsubscribers:
            unsubscribe()
        ctx.parts.local_lists = None

    return cleanup
