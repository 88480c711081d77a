"""The desired-configuration routes' answers to bad input, unknown names and absent stations."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms.app import running
from csms.desired_config.plugin import desired_config_plugin
from tests.conftest import make_settings


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running(make_settings(tmp_path), plugins=[desired_config_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url, timeout=10) as client,
    ):
        yield client


@pytest.mark.parametrize(("method", "path", "body", "status", "error", "detail"), [
    ("PUT", "/api/groups/depot/desired-config", {"ocpp1.6": {"A": 5}}, 400, "invalid_payload",
     "ocpp1.6.A must be a string"),
    ("PUT", "/api/groups/depot/desired-config", [1], 400, "invalid_payload", "the body must be an object"),
    ("PUT", "/api/groups/-bad/desired-config", {}, 400, "invalid_group", "group name '-bad' must be"),
    ("GET", "/api/groups/depot/desired-config", None, 404, "not_found", "group 'depot' has no desired"),
    ("DELETE", "/api/groups/depot/desired-config", None, 404, "not_found", "group 'depot' has no desired"),
    ("GET", "/api/desired-config/default", None, 404, "not_found", "the default set has no desired"),
    ("GET", "/api/groups/depot/config-status", None, 404, "not_found", "neither members nor"),
    ("GET", "/api/chargers/NOPE/config-drift", None, 404, "not_registered", "charger 'NOPE' is not"),
    ("GET", "/api/chargers/NOPE/config-results", None, 404, "not_registered", "charger 'NOPE'"),
    ("GET", "/api/chargers/IDLE/config-drift", None, 409, "not_connected", "station 'IDLE' is not connected"),
    ("GET", "/api/desired-config?limit=0", None, 400, "invalid_payload", "limit"),
])
async def test_bad_requests_get_precise_errors(
    api: httpx.AsyncClient, method: str, path: str, body: object, status: int, error: str, detail: str
) -> None:
    assert (await api.put("/api/chargers/IDLE", json={"security_profile": 0})).status_code in (200, 201)
    r = await api.request(method, path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"] == error
    assert detail in r.json()["detail"]


async def test_sets_list_in_pages_and_an_empty_group_status_is_an_empty_page(api: httpx.AsyncClient) -> None:
    for name in ("a", "b", "c"):
        assert (await api.put(f"/api/groups/{name}/desired-config", json={"priority": 1})).status_code == 201
    assert (await api.put("/api/groups/c/desired-config", json={})).status_code == 200
    first = await api.get("/api/desired-config", params={"limit": 2})
    assert [s["group"] for s in first.json()] == ["a", "b"]
    rest = await api.get("/api/desired-config", params={"limit": 2, "cursor": first.headers["X-Next-Cursor"]})
    assert [(s["group"], s["priority"]) for s in rest.json()] == [("c", 0)]
    assert "X-Next-Cursor" not in rest.headers
    status = await api.get("/api/groups/a/config-status")
    assert status.status_code == 200 and status.json() == []
