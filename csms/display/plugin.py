"""The display-messages and monitoring plugin: the service, subscribed to the stations' reports."""

from __future__ import annotations

from collections.abc import Callable

from csms.cluster.events import subscribe_all
from csms.core.events import Event, StationReported
from csms.display.service import DisplayService
from csms.plugins import Cleanup, PluginContext
from csms.profiles.calls import RecordedCalls
from csms.store.profiles import SqlOperatorCommands


def _reports(ev: Event) -> bool:
    return isinstance(ev, StationReported) and ev.action == "NotifyDisplayMessages"


async def display_plugin(ctx: PluginContext) -> Cleanup | None:
    def subscribe(handler: Callable[[Event], None]) -> Callable[[], None]:
        # the station's reports come to the core serving it, the request may have gone from this one
        return subscribe_all(ctx.all_events(), handler, StationReported, where=_reports)

    service = DisplayService(RecordedCalls(ctx.commands, SqlOperatorCommands(ctx.db), ctx.clock), subscribe)
    service.attach()
    ctx.parts.display = service

    async def cleanup() -> None:
        service.detach()
        ctx.parts.display = None

    return cleanup
