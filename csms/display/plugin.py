"""The display-messages and monitoring plugin: the service, subscribed to the stations' reports."""

from __future__ import annotations

from collections.abc import Callable

from csms.core.events import Event, StationReported
from csms.display.service import DisplayService
from csms.plugins import Cleanup, PluginContext
from csms.profiles.calls import RecordedCalls
from csms.store.profiles import SqlOperatorCommands


async def display_plugin(ctx: PluginContext) -> Cleanup | None:
    def subscribe(handler: Callable[[Event], None]) -> Callable[[], None]:
        return ctx.bus.subscribe(handler, StationReported)

    service = DisplayService(RecordedCalls(ctx.commands, SqlOperatorCommands(ctx.db), ctx.clock), subscribe)
    service.attach()
    ctx.parts.display = service

    async def cleanup() -> None:
        service.detach()
        ctx.parts.display = None

    return cleanup
