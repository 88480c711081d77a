"""The tariffs plugin: prices sessions, keeps CDRs, sends 2.0.1 running costs and total costs."""

from __future__ import annotations

from decimal import Decimal

import structlog

from csms.core.events import StationBooted, TransactionEnded, TransactionStarted
from csms.core.model import Transaction
from csms.core.ports import TxOrder
from csms.plugins import Cleanup, PluginContext
from csms.store.local_lists import SqlLocalLists
from csms.store.sites import SqlSites
from csms.store.tariffs import SqlTariffs
from csms.tariffs.running_cost import RunningCost
from csms.tariffs.service import TariffService
from ocppj.versions import OcppVersion

log = structlog.get_logger("csms.tariffs")


async def tariffs_plugin(ctx: PluginContext) -> Cleanup | None:
    cfg = ctx.settings.tariffs
    if not cfg.enabled:
        log.info("tariffs disabled: sessions are not priced and no CDRs are made")
        return None
    store = ctx.service.store
    service = TariffService(
        SqlTariffs(ctx.db), store, SqlSites(ctx.db), ctx.clock,
        reading_interval_s=cfg.reading_interval_s, tag_group_of=SqlLocalLists(ctx.db).tag_group_of,
    )
    # meter samples come through the core's register feed, not the bus: no event per sample
    ctx.service.registers = service.feed
    unsubscribe = [ctx.bus.subscribe(service.on_event, TransactionStarted, TransactionEnded),
                   ctx.all_events().subscribe(service.on_ended_anywhere, TransactionEnded)]

    async def total(tx: Transaction) -> Decimal | None:
        cost = await service.quote(tx)
        return None if cost is None else cost.incl_vat

    ctx.service.pricer = total
    if cfg.cost_update_interval_s > 0:
        def here(station_id: str) -> bool:
            session = ctx.sessions.get(station_id)
            return session is not None and not session.closed

        running = RunningCost(service.quote, ctx.commands.call, cfg.cost_update_interval_s, here=here)
        for tx in await store.list_transactions(active=True, limit=100_000, order=TxOrder.STARTED_DESC):
            if tx.protocol is OcppVersion.V201:
                running.open[(tx.station_id, tx.tx_id)] = tx
        kinds = (TransactionStarted, TransactionEnded, StationBooted)
        unsubscribe.append(ctx.all_events().subscribe(running.on_event, *kinds))
        ctx.spawn(running.run(), "running-cost")
    ctx.spawn(service.run(reconcile_s=cfg.reconcile_s, elected=ctx.elected("tariff-reconcile")), "tariffs")
    ctx.parts.tariffs = service

    async def cleanup() -> None:
        for stop in unsubscribe:
            stop()
        ctx.service.pricer = None
        if ctx.service.registers is service.feed:
            ctx.service.registers = None
        ctx.parts.tariffs = None
        await service.close()

    return cleanup
