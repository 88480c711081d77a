"""Stations and sessions filtered, sorted and paged by the server, over a seeded store (no browser)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from console_kit import SEED_START, fill_store, station_id_of

from csms.app import running
from tests.conftest import make_settings

STATIONS, SESSIONS = 300, 600


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    await fill_store(tmp_path / "csms.sqlite3", stations=STATIONS, sessions=SESSIONS)
    async with (
        running(make_settings(tmp_path)) as app,
        httpx.AsyncClient(base_url=app.api_url, timeout=10) as client,
    ):
        yield client


async def walk(api: httpx.AsyncClient, path: str, params: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """Every page, following ``X-Next-Cursor``; checks the ``Link`` header names the same cursor."""
    pages: list[list[dict[str, Any]]] = []
    while True:
        r = await api.get(path, params=params)
        assert r.status_code == 200, r.text
        pages.append(r.json())
        cursor = r.headers.get("X-Next-Cursor")
        if cursor is None:
            assert "Link" not in r.headers
            return pages
        assert r.headers["Link"].endswith('; rel="next"') and f"cursor={cursor}" in r.headers["Link"]
        params = {**params, "cursor": cursor}


async def test_station_list_without_parameters_is_every_station_as_before(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/api/chargers")
    ids = [s["id"] for s in r.json()]
    assert ids == [station_id_of(i) for i in range(STATIONS)]
    assert r.headers["X-Total-Count"] == str(STATIONS) and "Link" not in r.headers
    assert r.json()[1]["vendor"] == "Volta" and r.json()[1]["state"] == "offline"


async def test_station_pages_cover_the_list_once_in_the_order_asked(seeded: httpx.AsyncClient) -> None:
    pages = await walk(seeded, "/api/chargers", {"limit": 70, "sort": "id:desc"})
    assert [len(p) for p in pages] == [70, 70, 70, 70, 20]
    assert [s["id"] for p in pages for s in p] == [station_id_of(i) for i in reversed(range(STATIONS))]
    pages = await walk(seeded, "/api/chargers", {"limit": 100, "sort": "last_seen:desc"})
    by_seen = [s["last_seen"] for p in pages for s in p]
    assert by_seen == sorted(by_seen, reverse=True)
    r = await seeded.get("/api/chargers", params={"limit": 10, "offset": 295})
    assert [s["id"] for s in r.json()] == [station_id_of(i) for i in range(295, 300)]


async def test_station_filters_combine_and_count(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/api/chargers", params={"q": "VOLTA", "sort": "model", "limit": 5})
    assert r.headers["X-Total-Count"] == "100"
    assert [s["id"] for s in r.json()] == [station_id_of(i) for i in (1, 4, 7, 10, 13)]
    r = await seeded.get("/api/chargers", params={"q": "sn000012", "status": "offline", "connected": "false"})
    assert [s["id"] for s in r.json()] == [station_id_of(i) for i in range(120, 130)]  # serials SN0000120..
    r = await seeded.get("/api/chargers", params={"protocol": "ocpp2.0.1", "q": "acme", "limit": 2})
    assert r.headers["X-Total-Count"] == "100" and [s["id"] for s in r.json()] == ["CP00000", "CP00003"]
    r = await seeded.get("/api/chargers", params={"connected": "true"})
    assert r.json() == [] and r.headers["X-Total-Count"] == "0"


@pytest.mark.parametrize(("params", "says"), [
    ({"sort": "power"}, "sort must be"),
    ({"sort": "id:sideways"}, "sort must be"),
    ({"status": "sleeping"}, "status must be one of"),
    ({"cursor": "not-a-cursor"}, "cursor is not one this listing returned"),
    ({"cursor": "e30", "offset": 3}, "cursor or offset"),
])
async def test_bad_station_paging_parameters_get_a_400_that_says_why(
    seeded: httpx.AsyncClient, params: dict[str, Any], says: str
) -> None:
    r = await seeded.get("/api/chargers", params=params)
    assert r.status_code == 400 and says in r.json()["detail"]


async def test_session_list_without_new_parameters_is_unchanged(seeded: httpx.AsyncClient) -> None:
    r = await seeded.get("/api/transactions")
    assert [tx["id"] for tx in r.json()] == list(range(SESSIONS, SESSIONS - 500, -1))
    assert "X-Next-Cursor" not in r.headers
    active = (await seeded.get("/api/transactions", params={"active": "true", "limit": 1000})).json()
    assert len(active) == SESSIONS // 50 and all(tx["active"] for tx in active)


async def test_session_pages_by_start_time_within_a_date_range(seeded: httpx.AsyncClient) -> None:
    since, until = SEED_START + timedelta(hours=2), SEED_START + timedelta(hours=12)  # transactions 24..143
    params: dict[str, Any] = {"from": since.isoformat(), "to": until.isoformat(), "sort": "started_at:desc",
                              "limit": 25}
    pages = await walk(seeded, "/api/transactions", params)
    assert [len(p) for p in pages] == [25, 25, 25, 25, 20]
    assert [tx["id"] for p in pages for tx in p] == list(range(144, 24, -1))
    oldest = (await seeded.get("/api/transactions", params={**params, "sort": "started_at"})).json()
    assert [tx["id"] for tx in oldest] == list(range(25, 50))
    one = await walk(seeded, "/api/transactions",
                     {"charger_id": station_id_of(7), "sort": "started_at", "limit": 1})
    assert [tx["id"] for p in one for tx in p] == [8, 308]


@pytest.mark.parametrize(("params", "says"), [
    ({"from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from must be before to"),
    ({"sort": "energy"}, "sort must be"),
    ({"cursor": "e30"}, "cursor is not one this listing returned"),
])
async def test_bad_session_paging_parameters_get_a_400_that_says_why(
    seeded: httpx.AsyncClient, params: dict[str, Any], says: str
) -> None:
    r = await seeded.get("/api/transactions", params=params)
    assert r.status_code == 400 and says in r.json()["detail"]
