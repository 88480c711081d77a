"""The local-list routes against a running CSMS: policies, paging, documented errors, id-tag groups
and the change events the id-tag routes publish."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms.app import CsmsApp, running
from csms.core.events import Event, IdTagsChanged
from csms.local_lists.plugin import local_lists_plugin
from tests.conftest import make_settings


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path), plugins=[local_lists_plugin]) as a:
        yield a


@pytest.fixture
async def api(app: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as c:
        yield c


async def test_policies_are_created_replaced_listed_and_removed(api: httpx.AsyncClient) -> None:
    r = await api.put("/api/groups/depot-north/local-list", json={"tags": {"tag_group": "fleet-a"}})
    assert r.status_code == 201 and r.json()["tags"] == {"tag_group": "fleet-a"}
    r = await api.put("/api/groups/depot-north/local-list", json={"tags": "all"})
    assert r.status_code == 200 and r.json()["group"] == "depot-north" and r.json()["tags"] == "all"
    assert (await api.put("/api/local-list-policies/default", json={"tags": "all"})).status_code == 201
    r = await api.put("/api/groups/zeta/local-list", json={"tags": {"tag_group": "z"}})
    assert r.status_code == 201
    assert (await api.get("/api/groups/zeta/local-list")).json()["tags"] == {"tag_group": "z"}

    first = await api.get("/api/local-list-policies", params={"limit": 2})
    assert [p["group"] for p in first.json()] == [None, "depot-north"]
    cursor = first.headers["x-next-cursor"]
    rest = await api.get("/api/local-list-policies", params={"limit": 2, "cursor": cursor})
    assert [p["group"] for p in rest.json()] == ["zeta"] and "x-next-cursor" not in rest.headers

    assert (await api.delete("/api/groups/zeta/local-list")).status_code == 204
    r = await api.get("/api/groups/zeta/local-list")
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert (await api.delete("/api/local-list-policies/default")).status_code == 204
    assert (await api.get("/api/local-list-policies/default")).status_code == 404


@pytest.mark.parametrize(("path", "body", "status", "error"), [
    ("/api/groups/g/local-list", {"tags": "some"}, 400, None),
    ("/api/groups/g/local-list", {"tags": {"tag_group": ""}}, 400, None),
    ("/api/groups/g/local-list", {"tags": {"tag_group": "a/b"}}, 400, None),
    ("/api/groups/g/local-list", {"tags": {"tag_group": "a\x01"}}, 400, None),
    ("/api/groups/g/local-list", {"tags": "all", "extra": 1}, 400, None),
    ("/api/groups/%20/local-list", {"tags": "all"}, 400, "bad_request"),
    ("/api/groups/" + "g" * 65 + "/local-list", {"tags": "all"}, 400, None),
])
async def test_bad_policies_are_refused_with_a_documented_error(
    api: httpx.AsyncClient, path: str, body: object, status: int, error: str | None,
) -> None:
    r = await api.put(path, json=body)
    assert r.status_code == status, r.text
    assert set(r.json()) >= {"error", "detail"}
    if error:
        assert r.json()["error"] == error


async def test_station_routes_check_the_station(api: httpx.AsyncClient) -> None:
    r = await api.post("/api/chargers/NOPE/local-list/sync")
    assert r.status_code == 404 and r.json()["error"] == "not_registered"
    assert (await api.put("/api/chargers/KNOWN", json={})).status_code == 200
    r = await api.post("/api/chargers/KNOWN/local-list/sync")
    assert r.status_code == 409 and r.json()["error"] == "not_connected"
    assert (await api.get("/api/chargers/KNOWN/local-list")).status_code == 404
    view = (await api.get("/api/chargers/KNOWN")).json()
    assert view["local_list_version"] is None and view["local_list_in_sync"] is None
    r = await api.get("/api/local-list-policies", params={"cursor": "zeta"})
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    assert (await api.get("/api/local-lists", params={"limit": 0})).status_code == 400
    assert (await api.get("/api/local-lists")).json() == []


async def test_id_tags_carry_their_group_and_every_change_is_announced(
    app: CsmsApp, api: httpx.AsyncClient,
) -> None:
    seen: list[Event] = []
    app.bus.subscribe(seen.append, IdTagsChanged)
    assert (await api.post("/api/id-tags", json={"id_tag": "A1", "group": "fleet-a"})).status_code == 201
    assert (await api.post("/api/id-tags", json={"id_tag": "B1"})).status_code == 201
    assert (await api.post("/api/id-tags", json={"id_tag": "A1", "status": "Blocked", "group": "fleet-a"})
            ).status_code == 200
    assert (await api.post("/api/id-tags", json={"id_tag": "C1", "group": "a/b"})).status_code == 400
    assert [t["group"] for t in (await api.get("/api/id-tags")).json()] == ["fleet-a", None]
    only = (await api.get("/api/id-tags", params={"group": "fleet-a"})).json()
    assert only == [{"id_tag": "A1", "status": "Blocked", "expiry": None, "parent": None, "group": "fleet-a"}]
    assert (await api.delete("/api/id-tags/B1")).status_code == 204
    assert (await api.delete("/api/id-tags/B1")).status_code == 404
    assert [e.id_tags for e in seen if isinstance(e, IdTagsChanged)] == [("A1",), ("B1",), ("A1",), ("B1",)]


async def test_the_routes_say_when_local_lists_are_off(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, local_lists={"enabled": False})
    async with (running(settings, plugins=[local_lists_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url) as c):
        r = await c.get("/api/local-list-policies")
        assert r.status_code == 404 and "disabled" in r.json()["detail"]
        assert (await c.post("/api/id-tags", json={"id_tag": "A1", "group": "g"})).status_code == 201
