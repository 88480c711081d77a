"""The alarm routes: tokens and roles, paging with X-Next-Cursor."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from csms.alarms.plugin import alarms_plugin
from csms.app import running
from csms.core.events import StatusChanged
from tests.conftest import make_settings


async def test_alarm_routes_need_a_token_and_acknowledging_needs_the_operator(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token="op-token", api_readonly_token="ro-token")
    async with (
        running(settings, plugins=[alarms_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url) as api,
    ):
        app.bus.publish(StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status="Faulted"))
        ro, op = {"Authorization": "Bearer ro-token"}, {"Authorization": "Bearer op-token"}
        assert (await api.get("/api/alarms")).status_code == 401
        for _ in range(100):
            listed = (await api.get("/api/alarms", headers=ro)).json()
            if listed:
                break
            await asyncio.sleep(0.05)
        [alarm] = listed
        assert (await api.post(f"/api/alarms/{alarm['id']}/ack", headers=ro)).status_code == 403
        acked = await api.post(f"/api/alarms/{alarm['id']}/ack", headers=op)
        assert acked.status_code == 200 and acked.json()["acknowledged_by"] == "operator"


async def test_a_full_page_carries_the_next_cursor(tmp_path: Path) -> None:
    async with (
        running(make_settings(tmp_path), plugins=[alarms_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url) as api,
    ):
        for connector in range(1, 6):
            fault = StatusChanged(station_id="CP1", evse_id=1, connector_id=connector, status="Faulted")
            app.bus.publish(fault)
        for _ in range(100):
            if app.parts.alarms is not None and len(app.parts.alarms.book.active) == 5:
                break
            await asyncio.sleep(0.05)
        seen: list[int] = []
        cursor: str | None = None
        while True:
            params = {"limit": "2", **({"cursor": cursor} if cursor else {})}
            page = await api.get("/api/alarms", params=params)
            assert page.status_code == 200
            seen += [a["id"] for a in page.json()]
            cursor = page.headers.get("x-next-cursor")
            if cursor is None:
                break
        assert seen == sorted(seen, reverse=True) and len(seen) == len(set(seen)) == 5
