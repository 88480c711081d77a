"""The reservations plugin: the service on the bus, its worker and the store part it owns."""

from __future__ import annotations

from datetime import timedelta

import structlog

from csms.plugins import Cleanup, PluginContext
from csms.reservations.service import WATCHED, ReservationService
from csms.reservations.station import OcppReservations
from csms.store.reservations import SqlReservations

log = structlog.get_logger("csms.reservations")


async def reservations_plugin(ctx: PluginContext) -> Cleanup | None:
    """Reservations on unless ``reservations.enabled`` is false."""
    cfg = ctx.settings.reservations
    if not cfg.enabled:
        log.info("reservations disabled")
        return None
    store = ctx.service.store

    async def parent_of(id_tag: str) -> str | None:
        tag = await store.get_id_tag(id_tag)
        return tag.parent if tag is not None else None

    service = ReservationService(
        SqlReservations(ctx.db), OcppReservations(ctx.commands), ctx.clock,
        max_duration=timedelta(seconds=cfg.max_duration_s), tick_s=cfg.tick_s, parent_of=parent_of,
    )
    unsubscribe = ctx.bus.subscribe(service.on_event, *WATCHED)
    ctx.spawn(service.run(elected=ctx.elected("reservation-expiry")), "reservations")
    ctx.parts.reservations = service

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.reservations = None

    return cleanup
