"""Station->CSMS messages kept as station events: a handler wrapper both versions' tables use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.ocpp.session import Handler, StationSession
from ocppj.timestamps import parse_datetime

_TIME_FIELDS = ("timestamp", "generatedAt")

# The station->CSMS actions kept as station events (each in the versions that have it).
KEPT_ACTIONS = frozenset({
    "BootNotification", "StatusNotification", "SecurityEventNotification", "DataTransfer",
    "FirmwareStatusNotification", "DiagnosticsStatusNotification", "LogStatusNotification",
    "SignedFirmwareStatusNotification", "PublishFirmwareStatusNotification", "NotifyEvent",
    "NotifyMonitoringReport", "NotifyChargingLimit", "ClearedChargingLimit", "ReportChargingProfiles",
    "NotifyEVChargingNeeds", "NotifyEVChargingSchedule", "NotifyDisplayMessages",
    "NotifyCustomerInformation", "ReservationStatusUpdate",
})


def station_time(p: dict[str, Any]) -> datetime | None:
    """The message's own timestamp (``timestamp`` or ``generatedAt``), if it has a readable one."""
    for name in _TIME_FIELDS:
        value = p.get(name)
        if isinstance(value, str):
            try:
                return parse_datetime(value)
            except ValueError:
                return None
    return None


def kept(action: str, handler: Handler) -> Handler:
    """``handler``, after keeping the message as a station event (written behind, never awaited)."""

    async def keep(s: StationSession, p: dict[str, Any]) -> dict[str, Any]:
        s.service.report(s.station_id, action, p, station_time(p))
        return await handler(s, p)

    keep.__name__ = handler.__name__
    return keep


def keep_all(handlers: dict[str, Handler], actions: frozenset[str]) -> dict[str, Handler]:
    """The table with every action in ``actions`` kept."""
    return {name: kept(name, h) if name in actions else h for name, h in handlers.items()}
