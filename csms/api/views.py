"""JSON views of chargers and transactions, shared by the HTTP API and the console."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from csms.api.context import ApiContext
from csms.core.model import Station, Transaction
from csms.core.service import LiveStation
from ocppj.timestamps import format_datetime


def iso(dt: datetime | None) -> str | None:
    """RFC 3339 in UTC with a ``Z``, or None."""
    return format_datetime(dt, timespec="auto") if dt else None


def charger_view(ctx: ApiContext, live: LiveStation, security_profile: int = 0) -> dict[str, Any]:
    """A station as the API and the console show it: identity, connection, liveness, clock offset,
    EVSEs and their last readings."""
    session = ctx.registry.get(live.station_id)
    info = live.info
    evses: dict[int, dict[str, Any]] = {}
    station_status = None
    for (evse_id, connector_id), st in sorted(live.connectors.items()):
        if evse_id == 0:
            station_status = st.status
            continue
        e = evses.setdefault(evse_id, {"evse_id": evse_id, "connectors": []})
        e["connectors"].append({
            "connector_id": connector_id, "status": st.status, "error_code": st.error_code,
            "updated_at": iso(st.updated_at),
        })
    for (evse_id, _c), sample in live.last_sample.items():
        if evse_id == 0:
            continue
        e = evses.setdefault(evse_id, {"evse_id": evse_id, "connectors": []})
        e.update(
            power_w=sample.power_w, current_a=sample.current_a, energy_register_wh=sample.energy_wh,
            soc_percent=sample.soc_percent, voltage_v=sample.voltage_v, sampled_at=iso(sample.ts),
        )
    here = session is not None and not session.closed
    where = ctx.node.location(live.station_id) if ctx.node is not None else None
    view = {
        "id": live.station_id,
        "protocol": live.protocol.value if live.protocol else (where.version.value if where else None),
        "connected": here or where is not None,
        # a station another core serves is online while it is connected there (its liveness is theirs)
        "online": (here and ctx.service.online(live)) or (not here and where is not None),
        "vendor": info.vendor if info else None,
        "model": info.model if info else None,
        "serial_number": info.serial_number if info else None,
        "firmware_version": info.firmware_version if info else None,
        "last_seen": iso(live.last_seen()),
        "clock_offset_s": _offset(ctx.service.clock_offsets.offset_s(live.station_id)),
        "status": station_status,
        "security_profile": security_profile,
        "evses": [evses[k] for k in sorted(evses)],
    }
    if ctx.node is not None:  # a cluster: which core and which gateway node serve it now
        view["core"] = where.core_node if where else None
        view["gateway"] = where.gateway_node if where else None
    return view


def _offset(offset_s: float | None) -> float | None:
    return None if offset_s is None else round(offset_s, 1)


def registered_view(ctx: ApiContext, station: Station) -> dict[str, Any]:
    """A registered station (a row of the store) merged with its live state, if any: the registry
    says which stations exist and their security profile; memory adds connection and readings."""
    live = ctx.service.live.get(station.station_id)
    if live is None:  # registered by another process since start-up, or never seen
        live = LiveStation(station.station_id, station.protocol, False, station.info, station.last_seen_at)
    return charger_view(ctx, live, station.security_profile)


async def charger_detail(ctx: ApiContext, charger_id: str) -> dict[str, Any] | None:
    """One registered station merged with live state; None when the store does not have it."""
    station = await ctx.service.store.get_station(charger_id)
    if station is None:
        return None
    view = registered_view(ctx, station)
    if ctx.sites is not None:
        placed = await ctx.sites.placement(charger_id)
        view["site_id"], view["groups"] = placed.site_id, list(placed.groups)
        view["connector_specs"] = [
            {"evse_id": c.evse_id, "connector_id": c.connector_id, "standard": c.standard.value,
             "format": c.format.value, "power_type": c.power_type.value, "max_power_w": c.max_power_w}
            for c in await ctx.sites.connector_specs(charger_id)
        ]
    return view


def transaction_view(ctx: ApiContext, tx: Transaction) -> dict[str, Any]:
    """A transaction as the API and the console show it (1.6 ids as integers, energy so far in whole Wh)."""
    tx_id: int | str = int(tx.tx_id) if tx.protocol.value == "ocpp1.6" and tx.tx_id.isdigit() else tx.tx_id
    energy = ctx.service.live_energy_wh(tx)
    return {
        "id": tx_id,
        "charger_id": tx.station_id,
        "protocol": tx.protocol.value,
        "evse_id": tx.evse_id,
        "connector_id": tx.connector_id,
        "id_tag": tx.id_tag,
        "started_at": iso(tx.started_at),
        "stopped_at": iso(tx.stopped_at),
        "meter_start_wh": tx.meter_start_wh,
        "meter_stop_wh": tx.meter_stop_wh,
        "energy_wh": None if energy is None else round(energy),  # whole Wh: no float noise
        "stop_reason": tx.stop_reason,
        "active": tx.active,
        "flags": list(tx.flags),
        "reservation_id": tx.reservation_id,
    }
