"""The console's HTTP and WebSocket routes against a running CSMS (no browser)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets
from console_kit import TinyStation

from csms.app import CsmsApp, running
from csms.config import load_settings

CONSOLE = {"X-CSMS-Console": "1"}
TOKEN = "console-test-token-0123456789"


def ws_url(app: CsmsApp) -> str:
    return app.api_url.replace("http://", "ws://") + "/console/ws"


async def frames_until(ws: websockets.ClientConnection, kind: str, timeout: float = 5) -> dict[str, Any]:
    """Read frames until one of type ``kind`` arrives."""
    async with asyncio.timeout(timeout):
        while True:
            frame: dict[str, Any] = orjson.loads(await ws.recv())
            if frame["type"] == kind:
                return frame


@pytest.fixture
async def secured(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    """A CSMS that requires the API token (as it does off loopback)."""
    settings = load_settings(None, {
        "db": str(tmp_path / "csms.sqlite3"), "ocpp_port": 0, "api_port": 0, "auto_register": True,
        "db_synchronous": "NORMAL", "api_token": TOKEN, "call_timeout_s": 0.5,
    }, environ={})
    async with running(settings) as app:
        yield app


async def test_station_changes_are_coalesced_to_a_few_frames_a_second(
    csms: CsmsApp, stations: list[TinyStation]
) -> None:
    cp1 = await TinyStation.connect(csms.ocpp_url, "CP001")
    stations.append(cp1)
    await cp1.boot()
    async with websockets.connect(ws_url(csms)) as ws:
        assert (await frames_until(ws, "hello"))["auth"] is False
        snapshot = await frames_until(ws, "snapshot")
        assert [s["id"] for s in snapshot["stations"]] == ["CP001"]

        started = time.monotonic()
        for n in range(40):
            await cp1.meter(1, power_w=1000 + n, current_a=10, energy_wh=n)
            await asyncio.sleep(0.02)
        frames: list[dict[str, Any]] = []
        async with asyncio.timeout(5):
            while not frames or frames[-1]["type"] != "stations" or _power(frames[-1]) != 1039:
                frames.append(orjson.loads(await ws.recv()))
        elapsed = time.monotonic() - started

    updates = [f for f in frames if f["type"] == "stations"]
    assert 1 <= len(updates) <= elapsed / 0.25 + 2, len(updates)  # 40 samples, a handful of frames
    assert all(len(f["stations"]) == 1 for f in updates)  # one view per station per frame
    assert [_power(f) for f in updates] == sorted(_power(f) for f in updates)  # in order, latest last


def _power(frame: dict[str, Any]) -> float:
    power: float = frame["stations"][0]["evses"][0]["power_w"]
    return power


async def test_watching_a_station_sends_its_messages_and_open_sessions(
    csms: CsmsApp, stations: list[TinyStation]
) -> None:
    cp1 = await TinyStation.connect(csms.ocpp_url, "CP001")
    stations.append(cp1)
    await cp1.boot()
    tx_id = await cp1.start_transaction(1, "TAG-1", meter_start_wh=100)
    async with websockets.connect(ws_url(csms)) as ws:
        await frames_until(ws, "snapshot")
        await ws.send(orjson.dumps({"watch": "CP001"}).decode())
        history = await frames_until(ws, "messages")
        assert history["replace"] is True
        assert [(m["action"], m["type"]) for m in history["messages"][:2]] == [
            ("BootNotification", "Call"), ("BootNotification", "CallResult")]
        detail = await frames_until(ws, "detail")
        assert [tx["id"] for tx in detail["transactions"]] == [tx_id]

        await cp1.call("Heartbeat", {})
        seen: list[tuple[str, str]] = []
        while len(seen) < 2:  # the call and its answer, in one frame or two
            new = await frames_until(ws, "messages")
            assert new["replace"] is False
            seen += [(m["action"], m["type"]) for m in new["messages"]]
        assert seen == [("Heartbeat", "Call"), ("Heartbeat", "CallResult")]


async def test_actions_need_the_console_header_and_map_station_errors(
    secured: CsmsApp, stations: list[TinyStation]
) -> None:
    cp1 = await TinyStation.connect(secured.ocpp_url, "CP001")
    stations.append(cp1)
    cp1.answers["Reset"] = ("InternalError", "relay stuck")
    cp1.answers["ClearChargingProfile"] = lambda _p: {"status": "Unknown"}
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=secured.api_url) as api:
        async def act(
            intent: str, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> httpx.Response:
            return await api.post(f"/console/api/stations/CP001/actions/{intent}", json=body,
                                  headers={**auth, **CONSOLE} if headers is None else headers)

        assert (await act("unlock", {}, headers=auth)).status_code == 403  # no console header
        assert (await act("unlock", {}, headers=CONSOLE)).status_code == 401  # no token
        ok = await act("availability", {"evse_id": 0, "operative": False})
        assert ok.status_code == 200
        assert ok.json() == {"action": "ChangeAvailability", "response": {"status": "Accepted"}}
        assert await cp1.wait_call("ChangeAvailability") == {"connectorId": 0, "type": "Inoperative"}

        limit = await act("limit", {"evse_id": 1, "limit_a": 13.5})
        assert limit.status_code == 200
        profile = (await cp1.wait_call("SetChargingProfile"))["csChargingProfiles"]
        assert profile["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"] == 13.5

        error = await act("reset", {"hard": True})
        assert error.status_code == 502
        assert error.json()["code"] == "InternalError" and error.json()["action"] == "Reset"
        assert (await act("remote-stop", {})).status_code == 400  # tx_id missing
        assert (await act("remote-stop", {"tx_id": "abc"})).status_code == 400  # 1.6 ids are numbers
        assert (await act("trigger", {"message": "NoSuchMessage"})).status_code == 400  # schema
        assert (await act("teleport", {})).status_code == 404
        assert (await act("clear-limit", {})).json()["response"] == {"status": "Unknown"}

        cp1.answers["UnlockConnector"] = None  # silence: the CSMS's call timeout is 0.5 s here
        assert (await act("unlock", {})).status_code == 504
        missing = await api.post("/console/api/stations/NOPE/actions/unlock", json={},
                                 headers={**auth, **CONSOLE})
        assert missing.status_code == 404


async def test_login_page_cookie_and_socket_when_a_token_is_required(secured: CsmsApp) -> None:
    async with httpx.AsyncClient(base_url=secured.api_url) as api:
        assert (await api.get("/")).headers["location"] == "/login"
        assert (await api.get("/console/static/console.js")).status_code == 200  # code is public
        assert (await api.get("/console/static/../routes.py")).status_code == 404
        assert (await api.post("/login", data={"token": "wrong"})).status_code == 401
        ok = await api.post("/login", data={"token": TOKEN})
        assert ok.status_code == 303
        cookie = ok.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and TOKEN.lower() not in cookie
        page = await api.get("/")  # the client kept the cookie
        assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
        session = api.cookies["csms_console"]

    with pytest.raises(websockets.InvalidStatus):  # another site's page cannot open the socket
        await websockets.connect(ws_url(secured), origin="http://evil.example")  # type: ignore[arg-type]
    async with websockets.connect(ws_url(secured)) as ws:
        with pytest.raises(websockets.ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    headers = {"Cookie": f"csms_console={session}"}
    async with websockets.connect(ws_url(secured), additional_headers=headers) as ws:
        assert (await frames_until(ws, "hello"))["auth"] is True
