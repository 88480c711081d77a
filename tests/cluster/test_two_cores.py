"""Two CSMS core processes' worth of apps on one PostgreSQL database: the reservation expiry runs
on one of them; when it stops, the other takes it over."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from csms.app import CsmsApp
from csms.config import Settings
from csms.reservations.plugin import reservations_plugin
from csms.reservations.rules import ReservationRequest
from csms.reservations.service import ReservationService
from csms.store.reservations import SqlReservations
from tests.conftest import make_settings

TTL_S, RENEW_S = 4.0, 0.5  # a clean stop hands over at once: the TTL only absorbs load
NAME = "reservation-expiry"


def core(tmp_path: Path, pg_url: str, node: str) -> Settings:
    return make_settings(
        tmp_path / node, db=pg_url, files_dir=str(tmp_path / node / "files"),
        cluster={"node_id": node, "lease_ttl_s": TTL_S, "renew_s": RENEW_S},
        reservations={"tick_s": 0.1},
    )


def count_ticks(app: CsmsApp, monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """How many expiry ticks ``app`` ran (its service's own ``tick``, counted on the way)."""
    service = app.parts.reservations
    assert isinstance(service, ReservationService)
    ran = [0]
    tick = service.tick

    async def counted(now: datetime) -> object:
        ran[0] += 1
        return await tick(now)

    monkeypatch.setattr(service, "tick", counted)
    return ran


async def cluster_view(app: CsmsApp) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as client:
        r = await client.get("/api/cluster")
        assert r.status_code == 200
        [lease] = [x for x in r.json()["leases"] if x["name"] == NAME]
        return {"node_id": r.json()["node_id"], **lease}


async def leader_gauge(app: CsmsApp) -> str:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as client:
        text = (await client.get("/metrics")).text
    [line] = [x for x in text.splitlines() if x.startswith(f'csms_singleton_leader{{name="{NAME}"}}')]
    return line.split()[-1]


async def test_one_core_runs_the_expiry_and_the_other_takes_over_when_it_stops(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = CsmsApp(core(tmp_path, pg_url, "core-a"), plugins=[reservations_plugin])
    b = CsmsApp(core(tmp_path, pg_url, "core-b"), plugins=[reservations_plugin])
    a_running = b_running = False
    try:
        await a.start()
        a_running = True
        await b.start()
        b_running = True
        ran_a, ran_b = count_ticks(a, monkeypatch), count_ticks(b, monkeypatch)
        await asyncio.sleep(1.5)  # a few renewals and a dozen ticks
        assert ran_a[0] >= 5 and ran_b[0] == 0
        seen_by_b, seen_by_a = await cluster_view(b), await cluster_view(a)
        assert (seen_by_b["node_id"], seen_by_b["holder"], seen_by_b["token"], seen_by_b["held_here"]) == (
            "core-b", "core-a", 1, False)
        assert isinstance(seen_by_b["expires_at"], str) and seen_by_b["expires_at"].endswith("Z")
        assert (seen_by_a["node_id"], seen_by_a["held_here"]) == ("core-a", True)
        assert (await leader_gauge(a), await leader_gauge(b)) == ("1.0", "0.0")

        await a.stop()
        a_running = False
        stopped_at = time.monotonic()
        assert b.store is not None
        due = await SqlReservations(b.store.db).create(
            ReservationRequest("CP-1", 1, "TAG", datetime.now(UTC) - timedelta(seconds=1)), datetime.now(UTC),
        )
        while ran_b[0] == 0:
            assert time.monotonic() - stopped_at < TTL_S + RENEW_S + 1.0, "no takeover"
            await asyncio.sleep(0.05)
        view = await cluster_view(b)
        assert (view["holder"], view["token"], view["held_here"]) == ("core-b", 2, True)
        assert await leader_gauge(b) == "1.0"
        for _ in range(50):
            kept = await SqlReservations(b.store.db).get(due.id)
            if kept is not None and kept.status.value == "expired":
                break
            await asyncio.sleep(0.05)
        assert kept is not None and kept.status.value == "expired"
    finally:
        if b_running:
            await b.stop()
        if a_running:
            await a.stop()
