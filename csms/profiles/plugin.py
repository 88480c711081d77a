"""The charging-profiles plugin: the service on the live sessions, its tables and the stations' reports."""

from __future__ import annotations

from csms.cluster.events import subscribe_all
from csms.core.events import Event, StationReported
from csms.plugins import Cleanup, PluginContext
from csms.profiles.calls import RecordedCalls
from csms.profiles.service import ProfileService
from csms.store.profiles import SqlOperatorCommands, SqlProfiles


def _reports(ev: Event) -> bool:
    return isinstance(ev, StationReported) and ev.action == "ReportChargingProfiles"


async def profiles_plugin(ctx: PluginContext) -> Cleanup | None:
    calls = RecordedCalls(ctx.commands, SqlOperatorCommands(ctx.db), ctx.clock)
    def balanced(station_id: str, evse_id: int) -> bool:
        """The running balancer drives the EVSE (EVSE 0: any EVSE of the station)."""
        balancer = ctx.parts.balancer
        if balancer is None:
            return False
        return any(e.station_id == station_id and evse_id in (0, e.evse_id) for e in balancer.topology.evses)

    service = ctx.parts.profiles = ProfileService(calls, SqlProfiles(ctx.db), balanced=balanced)
    # the station's reports come to the core serving it, the request may have gone from this one
    unsubscribe = subscribe_all(ctx.all_events(), service.on_event, StationReported, where=_reports)

    async def cleanup() -> None:
        unsubscribe()
        ctx.parts.profiles = None

    return cleanup
