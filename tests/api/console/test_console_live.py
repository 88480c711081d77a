"""Pure parts of the console: station state, power, the message ring, cookie values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from csms.api.console.auth import session_value
from csms.api.console.live import MessageLog, station_power_w, station_state


def view(*statuses: str, connected: bool = True, station: str | None = None,
         power_w: float | None = None) -> dict[str, Any]:
    """A ``charger_view``-shaped dict with one connector per EVSE."""
    return {
        "connected": connected, "status": station,
        "evses": [{"evse_id": i + 1, "power_w": power_w,
                   "connectors": [{"connector_id": 1, "status": s, "error_code": None}]}
                  for i, s in enumerate(statuses)],
    }


@pytest.mark.parametrize(("station", "expected"), [
    (view("Charging", connected=False), "offline"),
    (view("Available", "Faulted"), "faulted"),
    (view("Available", station="Faulted"), "faulted"),
    (view("Charging", "Available"), "charging"),
    (view("Occupied", power_w=7000), "charging"),  # 2.0.1 has no Charging status
    (view("Occupied", power_w=0), "occupied"),
    (view("SuspendedEV"), "occupied"),
    (view("Reserved"), "occupied"),
    (view("Available", power_w=7000), "available"),  # a stale reading after the session ended
    (view("Unavailable", "Unavailable"), "unavailable"),
    (view("Available", station="Unavailable"), "unavailable"),
    (view("Unavailable", "Available"), "available"),
    (view(), "unknown"),
])
def test_station_state_names_the_most_urgent_condition(station: dict[str, Any], expected: str) -> None:
    assert station_state(station) == expected


def test_power_counts_only_evses_with_a_vehicle_plugged_in() -> None:
    both = view("Charging", "Available", power_w=7400)
    assert station_power_w(both) == 7400
    assert station_power_w(view("Charging", connected=False, power_w=7400)) == 0


def _msg(log: MessageLog, station: str, n: int, payload: object = None) -> dict[str, object]:
    frame = orjson.dumps([2, str(n), "Heartbeat", {} if payload is None else payload])
    return log.render(log.add(station, "in", "Heartbeat", "Call", str(n), frame))


def test_message_log_keeps_the_last_messages_per_station_and_forgets_idle_stations() -> None:
    log = MessageLog(per_station=3, max_stations=2, max_payload=20)
    for n in range(5):
        _msg(log, "A", n)
    assert [m["id"] for m in log.recent("A")] == ["2", "3", "4"]
    _msg(log, "B", 0)
    _msg(log, "A", 5)  # A is now the most recent
    _msg(log, "C", 0)  # evicts B, the least recently active
    assert len(log) == 2
    assert log.recent("B") == []
    assert [m["id"] for m in log.recent("A")] == ["3", "4", "5"]


def test_message_log_cuts_long_payloads() -> None:
    entry = _msg(MessageLog(max_payload=20), "A", 1, {"data": "x" * 100})
    assert entry["payload"] == '{"data":"xxxxxxxxxxx…'
    assert entry["direction"] == "in" and entry["action"] == "Heartbeat" and entry["type"] == "Call"


def test_session_cookie_stands_for_the_token_without_revealing_it() -> None:
    value = session_value("a-long-api-token")
    assert value == session_value("a-long-api-token")
    assert value != session_value("another-token")
    assert "a-long-api-token" not in value and len(value) == 64


def test_message_log_keeps_frames_as_sent_and_renders_their_payload_when_read() -> None:
    log = MessageLog()
    log.add("A", "in", "Heartbeat", "Call", "7", b'[2,"7","Heartbeat",{}]')
    log.add("A", "out", "Heartbeat", "CallResult", "7", b'[3,"7",{"currentTime":"2026-01-01T00:00:00.000Z"}]')
    log.add("A", "out", "Reset", "CallError", "8", b'[4,"8","InternalError","boom",{}]')
    log.add("A", "in", "Heartbeat", "Call", "9", b"not json at all")
    entries = log.recent("A")
    assert [e["payload"] for e in entries] == [
        "{}", '{"currentTime":"2026-01-01T00:00:00.000Z"}', '["InternalError","boom"]', "not json at all",
    ]
    assert [e["type"] for e in entries] == ["Call", "CallResult", "CallError", "Call"]


def test_message_log_never_keeps_a_password_a_call_carries() -> None:
    log = MessageLog()
    secret = "0123456789abcdef0123456789abcdef"
    frame = f'[2,"1","ChangeConfiguration",{{"key":"AuthorizationKey","value":"{secret}"}}]'.encode()
    log.add("A", "out", "ChangeConfiguration", "Call", "1", frame)
    item = {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}}
    big = {"setVariableData": [{**item, "attributeValue": secret}]}
    log.add("A", "out", "SetVariables", "Call", "2", orjson.dumps([2, "2", "SetVariables", big]))
    assert all(secret not in repr(kept) for ring in log._rings.values() for kept in ring)
    assert all(secret not in e["payload"] for e in log.recent("A"))
    assert "AuthorizationKey" in log.recent("A")[0]["payload"]


def test_message_log_renders_long_frames_at_once_and_keeps_them_cut() -> None:
    log = MessageLog(max_payload=50)
    frame = orjson.dumps([2, "1", "DataTransfer", {"vendorId": "V", "data": "y" * 10_000}])
    log.add("A", "in", "DataTransfer", "Call", "1", frame)
    kept = log._rings["A"][0][5]
    assert len(kept) <= 51
    assert log.recent("A")[0]["payload"] == '{"vendorId":"V","data":"' + "y" * 26 + "…"
