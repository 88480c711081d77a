"""The JSON views the API and the console share (``csms.api.views``)."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from csms.api.views import charger_view, iso, transaction_view
from csms.core.clock_offset import ClockOffsets
from csms.core.model import ConnectorState, StationInfo, Transaction
from csms.core.service import LiveStation
from ocppj.versions import OcppVersion

T0 = datetime(2026, 3, 1, 18, 30, tzinfo=UTC)


def _ctx(
    sessions: dict[str, Any] | None = None, energy_wh: float | None = None,
    offsets: ClockOffsets | None = None, now_s: float = T0.timestamp(),
) -> Any:
    return SimpleNamespace(
        registry=SimpleNamespace(get=(sessions or {}).get),
        service=SimpleNamespace(
            live_energy_wh=lambda tx: energy_wh, clock_offsets=offsets or ClockOffsets(),
            online=lambda live: live.online(now_s, 90.0),
        ),
        node=None,  # one node: no cluster
    )


def test_iso_is_utc_with_a_z_and_none_stays_none() -> None:
    assert iso(T0) == "2026-03-01T18:30:00Z"
    assert iso(None) is None


def test_charger_view_groups_connectors_per_evse_and_takes_evse_0_as_the_station_status() -> None:
    live = LiveStation(
        "CP1", protocol=OcppVersion.V201, info=StationInfo("ACME", "Wallbox", "SN-1", "1.2"),
        last_seen_at=T0,
        connectors={
            (2, 1): ConnectorState(2, 1, "Charging", updated_at=T0),
            (0, 0): ConnectorState(0, 0, "Available"),
            (1, 2): ConnectorState(1, 2, "Faulted", "GroundFailure"),
            (1, 1): ConnectorState(1, 1, "Available"),
        },
    )
    view = charger_view(_ctx({"CP1": SimpleNamespace(closed=False)}), live, security_profile=2)
    assert view["id"] == "CP1" and view["protocol"] == "ocpp2.0.1" and view["connected"] is True
    assert (view["vendor"], view["model"], view["serial_number"]) == ("ACME", "Wallbox", "SN-1")
    assert view["status"] == "Available" and view["security_profile"] == 2
    assert view["last_seen"] == "2026-03-01T18:30:00Z"
    assert [e["evse_id"] for e in view["evses"]] == [1, 2]
    assert [c["connector_id"] for c in view["evses"][0]["connectors"]] == [1, 2]
    assert view["evses"][0]["connectors"][1]["error_code"] == "GroundFailure"
    assert view["evses"][1]["connectors"][0]["updated_at"] == "2026-03-01T18:30:00Z"


def test_a_station_without_a_live_session_is_shown_disconnected() -> None:
    closed = SimpleNamespace(closed=True)
    assert charger_view(_ctx(), LiveStation("CP2"))["connected"] is False
    assert charger_view(_ctx({"CP2": closed}), LiveStation("CP2"))["connected"] is False
    view = charger_view(_ctx(), LiveStation("CP2"))
    assert view["protocol"] is None and view["vendor"] is None and view["evses"] == []


def test_a_connected_station_is_online_until_silent_for_the_offline_time_and_shows_its_clock_offset() -> None:
    offsets = ClockOffsets()
    offsets.add("CP3", T0.replace(hour=20, minute=30), T0)  # two hours ahead
    live = LiveStation("CP3", connected=True, last_seen_at=T0)
    session = {"CP3": SimpleNamespace(closed=False)}
    view = charger_view(_ctx(session, offsets=offsets, now_s=T0.timestamp() + 89), live)
    assert view["online"] is True and view["clock_offset_s"] == 7200.0
    live.touch(T0.timestamp() + 60)  # a frame came a minute later
    assert charger_view(_ctx(session, now_s=T0.timestamp() + 149), live)["online"] is True
    assert charger_view(_ctx(session, now_s=T0.timestamp() + 151), live)["online"] is False
    assert charger_view(_ctx(session), LiveStation("CP4"))["clock_offset_s"] is None


def test_transaction_view_shows_16_ids_as_integers_and_the_energy_so_far() -> None:
    tx16 = Transaction("CP1", "42", 1, 1, "TAG", T0, meter_start_wh=100.0)
    tx201 = Transaction("CP2", "a-b-c", 1, 1, None, T0, protocol=OcppVersion.V201)
    view = transaction_view(_ctx(energy_wh=250.0), tx16)
    assert view["id"] == 42 and view["charger_id"] == "CP1" and view["energy_wh"] == 250.0
    assert view["started_at"] == "2026-03-01T18:30:00Z" and view["stopped_at"] is None
    assert view["active"] is True and view["flags"] == []
    assert transaction_view(_ctx(), tx201)["id"] == "a-b-c"
