"""The charging-profiles plugin: the service on the live sessions, its tables and the stations' reports."""

from __future__ import annotations

from csms.core.events import StationReported
from csms.plugins import Cleanup, PluginContext
from csms.profiles.calls import RecordedCalls
from csms.profiles.service import ProfileService
from csms.store.profiles import SqlOperatorCommands, SqlProfiles


async def profiles_plugin(ctx: PluginContext) -> Cleanup | None:
    calls = RecordedCalls(ctx.commands, SqlOperatorCommands(ctx.db), ctx.clock)
    service = ctx.parts.profiles = ProfileService(calls, SqlProfiles(ctx.db))
    unsubscribe = ctx.bus.subscribe(service.on_event, StationReported)

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.profiles = None

    return cleanup
