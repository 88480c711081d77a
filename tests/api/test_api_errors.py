"""Every API error has one shape, ``{"error", "detail"}``, and the actions route refuses what it
must before anything reaches the station (real CSMS, real ``ocpp``-library stations)."""

from __future__ import annotations

from pathlib import Path

import httpx
from ocpp.v16 import call
from ocpp.v201 import call as call201

from csms.app import CsmsApp, running
from tests.conftest import make_settings
from tests.e2e.stations import Station16, Station201, connected


def _shape(r: httpx.Response, status: int, code: str) -> None:
    body = r.json()
    assert r.status_code == status, r.text
    assert body["error"] == code and isinstance(body["detail"], str) and body["detail"], body


async def test_a_payload_over_the_outbound_limit_is_refused_and_the_station_stays(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station16, csms.ocpp_url, "BIG", "ocpp1.6") as cp:
        await cp.call(call.Heartbeat(), suppress=False)
        huge = {"vendorId": "x", "data": "a" * (5 << 20)}
        r = await api.post("/api/chargers/BIG/actions/DataTransfer", json=huge)
        _shape(r, 413, "payload_too_large")
        assert cp.received == []
        r = await api.post("/api/chargers/BIG/actions/Reset", json={"type": "Soft"})
        assert r.status_code == 200 and r.json() == {"status": "Accepted"}
        assert (await api.get("/api/chargers/BIG")).json()["connected"] is True


async def test_malformed_json_and_invalid_bodies_answer_400_in_plain_words(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    json_type = {"content-type": "application/json"}
    r = await api.put("/api/chargers/J1", content=b'{"security_profile": ', headers=json_type)
    _shape(r, 400, "bad_request")
    r = await api.put("/api/chargers/J1", json={"security_profile": 9})
    _shape(r, 400, "invalid_payload")
    assert "security_profile" in r.json()["detail"] and "pydantic" not in r.text and "loc" not in r.json()
    _shape(await api.get("/api/no-such-route"), 404, "not_found")


async def test_a_station_to_csms_action_is_refused_and_nothing_is_sent(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station16, csms.ocpp_url, "DIR", "ocpp1.6") as cp:
        await cp.call(call.Heartbeat(), suppress=False)
        for action in ("Heartbeat", "BootNotification", "MeterValues", "StartTransaction"):
            _shape(await api.post(f"/api/chargers/DIR/actions/{action}", json={}), 400, "wrong_direction")
        _shape(await api.post("/api/chargers/DIR/actions/Teleport", json={}), 400, "unknown_action")
        r = await api.post("/api/chargers/DIR/actions/Reset", json={"type": "Sideways"})
        _shape(r, 400, "invalid_payload")
        r = await api.post("/api/chargers/DIR/actions/ClearCache", json={})
        _shape(r, 502, "call_error")
        assert r.json()["code"] == "NotImplemented"
        assert [name for name, _ in cp.received] == []


async def test_unknown_charger_is_404_and_a_registered_offline_one_409(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    _shape(await api.post("/api/chargers/GHOST/actions/Reset", json={"type": "Hard"}), 404, "not_registered")
    _shape(await api.get("/api/chargers/GHOST"), 404, "not_registered")
    assert (await api.put("/api/chargers/OFFLINE", json={})).status_code == 200
    _shape(await api.post("/api/chargers/OFFLINE/actions/Reset", json={"type": "Hard"}), 409, "not_connected")


async def test_profile_3_registers_without_a_password_but_1_and_2_need_one(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    r = await api.put("/api/chargers/TLS3", json={"security_profile": 3})
    assert r.status_code == 200 and r.json()["security_profile"] == 3
    for profile in (1, 2):
        r = await api.put(f"/api/chargers/P{profile}", json={"security_profile": profile})
        _shape(r, 400, "invalid_payload")


async def test_auth_errors_keep_their_status_in_the_same_shape(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token="t" * 32, api_readonly_token="r" * 32)
    async with running(settings) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        r = await api.get("/api/chargers")
        _shape(r, 401, "unauthorized")
        assert r.headers["www-authenticate"] == "Bearer"
        r = await api.put("/api/chargers/X", json={}, headers={"Authorization": "Bearer " + "r" * 32})
        _shape(r, 403, "forbidden")


async def test_a_201_station_s_reported_bytes_per_message_caps_the_frame(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    async with connected(Station201, csms.ocpp_url, "BPM", "ocpp2.0.1") as cs:
        await cs.call(call201.NotifyReport(
            request_id=1, generated_at="2026-11-29T08:00:00Z", seq_no=0, tbc=False,
            report_data=[{"component": {"name": "DeviceDataCtrlr"}, "variable": {"name": "BytesPerMessage"},
                          "variable_attribute": [{"type": "Actual", "value": "2000"}]}],
        ), suppress=False)
        item = {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"}}
        small = await api.post("/api/chargers/BPM/actions/GetVariables", json={"getVariableData": [item]})
        assert small.status_code == 200, small.text
        big = await api.post("/api/chargers/BPM/actions/GetVariables", json={"getVariableData": [item] * 40})
        _shape(big, 413, "payload_too_large")
        assert "2000" in big.json()["detail"]
        assert [name for name, _ in cs.received] == ["GetVariables"]
