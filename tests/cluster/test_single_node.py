"""With SQLite one process runs every singleton: nothing is elected, everything ticks."""

from __future__ import annotations

from pathlib import Path

import httpx

from csms.app import running
from csms.reservations.plugin import reservations_plugin
from tests.conftest import make_settings


async def test_a_single_sqlite_node_holds_every_singleton(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, cluster={"node_id": "solo"}, api_token="t0ken")
    async with running(settings, plugins=[reservations_plugin]) as app:
        async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as client:
            assert (await client.get("/api/cluster")).status_code == 401
            r = await client.get("/api/cluster", headers={"Authorization": "Bearer t0ken"})
            assert r.status_code == 200
            assert r.json() == {"node_id": "solo", "leases": [
                {"name": "reservation-expiry", "holder": "solo", "token": 0, "expires_at": None,
                 "held_here": True},
            ]}
            metrics = (await client.get("/metrics", headers={"Authorization": "Bearer t0ken"})).text
        assert 'csms_singleton_leader{name="reservation-expiry"} 1.0' in metrics
