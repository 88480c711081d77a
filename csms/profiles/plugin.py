"""The charging-profiles plugin: the service on the live sessions and its tables."""

from __future__ import annotations

from csms.plugins import Cleanup, PluginContext
from csms.profiles.calls import RecordedCalls
from csms.profiles.service import ProfileService
from csms.store.profiles import SqlOperatorCommands, SqlProfiles


async def profiles_plugin(ctx: PluginContext) -> Cleanup | None:
    calls = RecordedCalls(ctx.commands, SqlOperatorCommands(ctx.db), ctx.clock)
    ctx.parts.profiles = ProfileService(calls, SqlProfiles(ctx.db))

    async def cleanup() -> None:
        ctx.parts.profiles = None

    return cleanup
