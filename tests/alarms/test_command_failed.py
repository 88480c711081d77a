"""``CommandFailed`` (hence ``command_unanswered``) only for calls the station left unanswered: a
timeout or a lost connection, never a connection the CSMS closed on purpose."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from csms.alarms.plugin import alarms_plugin
from csms.app import running
from csms.core.commands import ResetKind
from csms.core.events import CommandFailed, Event
from csms.errors import CallTimeout, StationNotConnected
from csms.ocpp.control import OcppControl
from csms.ocpp.registry import SessionRegistry
from ocppj.versions import OcppVersion
from tests.alarms.test_alarms_e2e import active_of, alarm_settings, client
from tests.telemetry.servers import free_port


@dataclass
class ClosedSocket:
    close_code: int | None


class FailingSession:
    """A live session whose call fails as the session's does once its socket closed with ``code``."""

    def __init__(self, code: int | None, error: Exception) -> None:
        self.station_id, self.version, self.closed = "CP1", OcppVersion.V16, False
        self.ws, self.error = ClosedSocket(code), error

    async def call(
        self, action: str, payload: dict[str, Any], *, timeout: float | None = None
    ) -> dict[str, Any]:
        self.closed = True
        raise self.error


@pytest.mark.parametrize(("code", "error", "reason"), [
    (None, CallTimeout("CP1 did not answer"), "timeout"),
    (1006, StationNotConnected("CP1"), "connection lost"),  # the TCP connection dropped
    (1011, StationNotConnected("CP1"), "connection lost"),  # keepalive timeout
    (4000, StationNotConnected("CP1"), "connection lost"),  # the gateway link lost
    (1000, StationNotConnected("CP1"), None),  # deregistered, replaced by a newer connection
    (1001, StationNotConnected("CP1"), None),  # the CSMS shutting down
])
async def test_only_unanswered_calls_are_published(
    code: int | None, error: Exception, reason: str | None
) -> None:
    published: list[Event] = []
    registry = SessionRegistry()
    registry.register(FailingSession(code, error))  # type: ignore[arg-type]
    control = OcppControl(registry, published.append)
    with pytest.raises(type(error)):
        await control.reset("CP1", ResetKind.SOFT)
    expected = [] if reason is None else [("CP1", "Reset", reason)]
    assert [(e.station_id, e.action, e.reason) for e in published if isinstance(e, CommandFailed)] == expected
    assert len(published) == len(expected)


@pytest.mark.e2e
async def test_deregistering_a_station_with_a_command_pending_raises_no_alarm(tmp_path: Path) -> None:
    async with (
        running(alarm_settings(tmp_path, free_port()), plugins=[alarms_plugin]) as app,
        client(app) as api,
        websockets.connect(f"{app.ocpp_url}/SILENT", subprotocols=["ocpp1.6"]) as ws,  # type: ignore[list-item]
    ):
        boot = {"chargePointVendor": "A", "chargePointModel": "B"}
        await ws.send(orjson.dumps([2, "b1", "BootNotification", boot]))
        await ws.recv()
        pending = asyncio.create_task(api.post("/api/chargers/SILENT/actions/Reset", params={"timeout": 30},
                                               json={"type": "Soft"}))
        await ws.recv()  # the Reset CALL, never answered
        assert (await api.delete("/api/chargers/SILENT")).status_code == 204
        answer: httpx.Response = await asyncio.wait_for(pending, 10)
        assert answer.status_code != 200
        await asyncio.sleep(0.3)  # the alarm worker would have stored it by now
        assert await active_of(api, "command_unanswered")() == []
        every = await api.get("/api/alarms", params={"state": "all"})
        assert [a for a in every.json() if a["kind"] == "command_unanswered"] == []
