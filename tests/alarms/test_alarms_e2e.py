"""Alarms end to end: an independent OCPP station, the API, a private webhook receiver and broker."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import orjson
import pytest
import websockets
from ocpp.v16 import call

from csms.alarms.plugin import alarms_plugin
from csms.app import CsmsApp, running
from csms.telemetry.plugin import mqtt_plugin
from tests.alarms.receiver import Receiver, receiving
from tests.conftest import make_settings
from tests.e2e.stations import Station16, connected
from tests.telemetry.servers import MosquittoServer, free_port

pytestmark = pytest.mark.e2e

SECRET = "webhook-secret"


def alarm_settings(tmp_path: Path, webhook_port: int, **more: Any) -> Any:
    alarms = {"webhook_url": f"http://127.0.0.1:{webhook_port}/hook", "webhook_secret": SECRET,
              "webhook_retry_initial_s": 0.2, "webhook_retry_max_s": 0.5, "webhook_attempts": 20}
    return make_settings(tmp_path, alarms=alarms, **more)


async def eventually(check: Callable[[], Awaitable[Any]], timeout_s: float = 5.0) -> Any:
    """``check()``'s first truthy result within ``timeout_s``."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout_s}s: {check}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def client(app: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as c:
        yield c


async def booted(cp: Station16) -> None:
    boot = call.BootNotification(charge_point_vendor="Acme", charge_point_model="AC22")
    await cp.call(boot, suppress=False)


async def report(cp: Station16, status: str, error: str = "NoError") -> None:
    await cp.call(call.StatusNotification(connector_id=1, error_code=error, status=status), suppress=False)


def active_of(api: httpx.AsyncClient, kind: str) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def check() -> list[dict[str, Any]]:
        r = await api.get("/api/alarms", params={"state": "active"})
        assert r.status_code == 200
        return [a for a in r.json() if a["kind"] == kind]
    return check


def verified(receiver: Receiver) -> list[dict[str, Any]]:
    """The bodies received, each checked against its signature."""
    out = []
    for r in receiver.requests:
        expected = "sha256=" + hmac.new(SECRET.encode(), r.body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(r.headers["x-csms-signature"], expected)
        out.append(orjson.loads(r.body))
    return out


async def test_faulted_connector_raises_notifies_acknowledges_and_clears(tmp_path: Path) -> None:
    receiver = Receiver(port=free_port())  # the webhook is down at first: deliveries are retried
    async with (
        running(alarm_settings(tmp_path, receiver.port), plugins=[alarms_plugin]) as app,
        client(app) as api,
        connected(Station16, app.ocpp_url, "CP1", "ocpp1.6") as cp,
    ):
        await booted(cp)
        await report(cp, "Available")
        await report(cp, "Faulted", "GroundFailure")
        [alarm] = await eventually(active_of(api, "connector_faulted"))
        assert alarm["charger_id"] == "CP1" and alarm["state"] == "raised" and alarm["severity"] == "major"
        assert "GroundFailure" in alarm["detail"] and alarm["raised_at"].endswith("Z")
        await asyncio.sleep(0.5)  # a few refused attempts
        async with receiving(receiver):
            await eventually(lambda: _true(len(receiver.requests) >= 1))
            [delivered] = verified(receiver)
            assert delivered["id"] == alarm["id"] and delivered["state"] == "raised"
            assert delivered["kind"] == "connector_faulted" and delivered["charger_id"] == "CP1"

            acked = await api.post(f"/api/alarms/{alarm['id']}/ack")
            assert acked.status_code == 200
            assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_by"] == "operator"
            again = await api.post(f"/api/alarms/{alarm['id']}/ack")
            assert again.status_code == 200 and again.json() == acked.json()  # idempotent

            await report(cp, "Available")
            await eventually(lambda: _empty(active_of(api, "connector_faulted")))
            await eventually(lambda: _true(len(receiver.requests) >= 3))
            assert [b["state"] for b in verified(receiver)] == ["raised", "acknowledged", "cleared"]

        everything = (await api.get("/api/alarms", params={"state": "all", "charger_id": "CP1"})).json()
        assert [(a["id"], a["state"]) for a in everything] == [(alarm["id"], "cleared")]
        history = (await api.get(f"/api/alarms/{alarm['id']}/history")).json()
        assert [(h["action"], h["actor"]) for h in history] == [
            ("raised", "csms"), ("acknowledged", "operator"), ("cleared", "csms"),
        ]
        assert (await api.post("/api/alarms/999/ack")).status_code == 404
        assert (await api.get("/api/alarms/999/history")).status_code == 404
        assert (await api.get("/api/alarms", params={"state": "bogus"})).status_code == 400


async def _true(value: bool) -> bool:
    return value


async def _empty(check: Callable[[], Awaitable[list[dict[str, Any]]]]) -> bool:
    return not await check()


async def test_a_restart_keeps_active_alarms_without_duplicating_them(tmp_path: Path) -> None:
    settings = alarm_settings(tmp_path, free_port())
    async with (
        running(settings, plugins=[alarms_plugin]) as app,
        client(app) as api,
        connected(Station16, app.ocpp_url, "CP1", "ocpp1.6") as cp,
    ):
        await booted(cp)
        await report(cp, "Faulted", "HighTemperature")
        [before] = await eventually(active_of(api, "connector_faulted"))
    async with running(settings, plugins=[alarms_plugin]) as app, client(app) as api:
        [after] = await active_of(api, "connector_faulted")()
        assert after == before
        metrics = (await api.get("/metrics")).text
        assert 'csms_alarms_active{kind="connector_faulted",severity="major"} 1.0' in metrics
        async with connected(Station16, app.ocpp_url, "CP1", "ocpp1.6") as cp:
            await booted(cp)
            await report(cp, "Faulted", "HighTemperature")
            await asyncio.sleep(0.3)
            assert await active_of(api, "connector_faulted")() == [before]  # not raised twice
            await report(cp, "Available")
            await eventually(lambda: _empty(active_of(api, "connector_faulted")))


async def test_alarm_changes_are_published_over_mqtt(tmp_path: Path) -> None:
    (tmp_path / "mqtt").mkdir()
    broker = MosquittoServer(tmp_path / "mqtt")
    broker.start()
    try:
        settings = alarm_settings(tmp_path, free_port(), mqtt={"url": broker.url})
        async with (
            aiomqtt.Client("127.0.0.1", broker.port) as sub,
            running(settings, plugins=[mqtt_plugin, alarms_plugin]) as app,
            connected(Station16, app.ocpp_url, "CP1", "ocpp1.6") as cp,
        ):
            await sub.subscribe("csms/alarms/#", qos=1)
            await booted(cp)
            await report(cp, "Faulted", "GroundFailure")
            async with asyncio.timeout(5):
                message = await anext(aiter(sub.messages))
            assert str(message.topic) == "csms/alarms/connector_faulted/CP1"
            assert isinstance(message.payload, bytes)
            body = orjson.loads(message.payload)
            assert body["state"] == "raised" and body["severity"] == "major" and body["id"] >= 1
    finally:
        broker.stop()


async def test_an_unanswered_command_raises_command_unanswered(tmp_path: Path) -> None:
    settings = alarm_settings(tmp_path, free_port())
    async with (
        running(settings, plugins=[alarms_plugin]) as app,
        client(app) as api,
        websockets.connect(f"{app.ocpp_url}/SILENT", subprotocols=["ocpp1.6"]) as ws,  # type: ignore[list-item]
    ):
        boot = {"chargePointVendor": "A", "chargePointModel": "B"}
        await ws.send(orjson.dumps([2, "b1", "BootNotification", boot]))
        await ws.recv()
        r = await api.post("/api/chargers/SILENT/actions/Reset", params={"timeout": 0.3},
                           json={"type": "Soft"})
        assert r.status_code == 504
        [alarm] = await eventually(active_of(api, "command_unanswered"))
        assert alarm["charger_id"] == "SILENT" and alarm["severity"] == "warning"
        assert "Reset" in alarm["detail"]
        acked = (await api.post(f"/api/alarms/{alarm['id']}/ack")).json()
        assert acked["state"] == "cleared" and acked["acknowledged_by"] == "operator"  # ack-only: ack ends it
        assert await active_of(api, "command_unanswered")() == []
