"""The firmware routes' contract: uploads, download links (no token, expiry), campaign errors."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from csms.app import CsmsApp, running
from csms.firmware.files import DownloadTokens, TokenExpired, TokenInvalid
from csms.firmware.plugin import firmware_plugin
from csms.firmware.service import FirmwareService
from tests.conftest import make_settings
from tests.simulators.sim_support import wait_until

TOKEN = "operator-token-0123456789"


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    settings = make_settings(tmp_path, api_token=TOKEN, firmware={"max_file_bytes": 1000})
    async with running(settings, plugins=[firmware_plugin]) as app:
        yield app


@pytest.fixture
async def api(app: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10,
                                 headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        yield client


def _service(app: CsmsApp) -> FirmwareService:
    assert app.parts.firmware is not None
    return app.parts.firmware


async def _upload(api: httpx.AsyncClient, body: bytes, name: str = "fw.bin") -> httpx.Response:
    return await api.post("/api/firmware-files", params={"name": name}, content=body)


async def test_an_uploaded_image_is_kept_by_its_sha256_and_listed(
    app: CsmsApp, api: httpx.AsyncClient
) -> None:
    body = b"SIMFW 9.9\n" + bytes(range(200))
    r = await _upload(api, body, "charger 9.9.bin")
    assert r.status_code == 201, r.text
    f = r.json()
    sha = hashlib.sha256(body).hexdigest()
    assert (f["name"], f["size"], f["sha256"]) == ("charger 9.9.bin", len(body), sha)
    assert (app.settings.files_path() / "firmware" / f["sha256"]).read_bytes() == body
    assert (await api.get(f"/api/firmware-files/{f['file_id']}")).json()["sha256"] == f["sha256"]
    assert [x["file_id"] for x in (await api.get("/api/firmware-files")).json()] == [f["file_id"]]
    audit = (await api.get("/api/audit")).json()["items"]
    assert any(e["action"] == "upload_firmware_file" and e["target"] == f["file_id"] for e in audit)


async def test_upload_errors(app: CsmsApp, api: httpx.AsyncClient) -> None:
    r = await _upload(api, b"x" * 1001)
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    r = await _upload(api, b"")
    assert r.status_code == 400 and r.json()["error"] == "bad_request"
    r = await _upload(api, b"abc", "../evil")
    assert r.status_code == 400 and "slashes" in r.json()["detail"]
    r = await api.post("/api/firmware-files", content=b"abc")
    assert r.status_code == 400  # name is required
    async with httpx.AsyncClient(base_url=app.api_url) as anonymous:
        r = await anonymous.post("/api/firmware-files", params={"name": "a"}, content=b"a")
        assert r.status_code == 401
    assert list((app.settings.files_path() / "firmware").iterdir()) == []  # nothing left behind


async def test_the_download_link_needs_no_token_and_expires(app: CsmsApp, api: httpx.AsyncClient) -> None:
    body = b"SIMFW 1.2\n" + b"z" * 100
    f = (await _upload(api, body)).json()
    service = _service(app)
    url = service.download_url(f["file_id"], datetime.now(UTC))
    assert url.startswith(f"{app.api_url}/firmware/")
    async with httpx.AsyncClient() as anonymous:
        r = await anonymous.get(url)
        assert r.status_code == 200 and r.content == body
        assert r.headers["x-checksum-sha256"] == f["sha256"]
        expired = service.tokens.issue(f["file_id"], datetime.now(UTC) - timedelta(seconds=1))
        r = await anonymous.get(f"{app.api_url}/firmware/{expired}")
        assert r.status_code == 410 and r.json()["error"] == "gone"
        forged = url.rsplit("/", 1)[1][:-2] + "AA"
        assert (await anonymous.get(f"{app.api_url}/firmware/{forged}")).status_code == 404
        assert (await anonymous.get(f"{app.api_url}/firmware/nonsense")).status_code == 404
        later = datetime.now(UTC) + timedelta(hours=1)
        other_key = DownloadTokens("another secret").issue(f["file_id"], later)
        assert (await anonymous.get(f"{app.api_url}/firmware/{other_key}")).status_code == 404
        assert (await api.delete(f"/api/firmware-files/{f['file_id']}")).status_code == 204
        assert (await anonymous.get(url)).status_code == 404  # deleted
    assert not (app.settings.files_path() / "firmware" / f["sha256"]).exists()
    assert (await api.delete(f"/api/firmware-files/{f['file_id']}")).status_code == 404


def test_tokens_name_their_file_until_they_expire() -> None:
    tokens = DownloadTokens("k")
    now = datetime(2030, 1, 1, tzinfo=UTC)
    token = tokens.issue("a" * 32, now + timedelta(seconds=60))
    assert tokens.check(token, now + timedelta(seconds=59)) == "a" * 32
    with pytest.raises(TokenExpired):
        tokens.check(token, now + timedelta(seconds=61))
    with pytest.raises(TokenInvalid):
        tokens.check(token.replace("a" * 32, "b" * 32), now)


@pytest.mark.parametrize("body, status, error, needle", [
    ({"version": "2", "targets": {"stations": ["X"]}}, 400, "bad_request", "exactly one of location"),
    ({"version": "2", "location": "http://a/b", "file_id": "0" * 32, "targets": {"stations": ["X"]}}, 400,
     "bad_request", "exactly one of location"),
    ({"version": "2", "location": "file:///etc/passwd", "targets": {"stations": ["X"]}}, 400, None,
     "location"),
    ({"version": "2", "location": "http://a/b", "targets": {"nope": 1}}, 400, "bad_request",
     "unknown target"),
    ({"version": "2", "location": "http://a/b", "targets": {"stations": ["NOBODY"]}}, 400, "bad_request",
     "no registered station"),
    ({"version": "2", "file_id": "0" * 32, "targets": {"stations": ["CP1"]}}, 400, "bad_request",
     "not found"),
    ({"version": "2", "location": "http://a/b", "targets": {"stations": ["CP1"]}, "wave_size": 0}, 400, None,
     "wave_size"),
    ({"version": "2", "location": "http://a/b", "targets": {"stations": ["CP1"]}, "signature": "c2ln"}, 400,
     "bad_request", "signature and signing_certificate"),
    ({"version": "2", "location": "http://a/b", "targets": {"stations": ["CP1"]}, "colour": "red"}, 400, None,
     "colour"),
])
async def test_campaign_creation_errors(
    app: CsmsApp, api: httpx.AsyncClient, body: dict[str, object], status: int, error: str | None,
    needle: str,
) -> None:
    assert (await api.put("/api/chargers/CP1", json={})).status_code == 200
    r = await api.post("/api/firmware-campaigns", json=body)
    assert r.status_code == status, r.text
    if error is not None:
        assert r.json()["error"] == error
    assert needle in r.json()["detail"]


async def test_campaign_lookups_transitions_and_overlaps(app: CsmsApp, api: httpx.AsyncClient) -> None:
    assert (await api.put("/api/chargers/CP1", json={})).status_code == 200
    assert (await api.get("/api/firmware-campaigns/99")).status_code == 404
    assert (await api.get("/api/firmware-campaigns/0")).status_code == 400
    assert (await api.post("/api/firmware-campaigns/99/pause")).status_code == 404
    body = {"version": "2", "location": "http://127.0.0.1:9/fw.bin", "targets": {"stations": ["CP1"]}}
    r = await api.post("/api/firmware-campaigns", json=body)
    assert r.status_code == 201
    cid = r.json()["id"]
    assert (await api.post(f"/api/firmware-campaigns/{cid}/explode")).status_code in (400, 404)
    r = await api.post("/api/firmware-campaigns", json=body)
    assert r.status_code == 409 and f"campaign {cid}" in r.json()["detail"]
    assert (await api.post(f"/api/firmware-campaigns/{cid}/resume")).status_code == 409
    assert (await api.post(f"/api/firmware-campaigns/{cid}/abort")).status_code == 200
    assert (await api.post(f"/api/firmware-campaigns/{cid}/abort")).status_code == 409
    r = await api.post("/api/firmware-campaigns", json=body)  # the station is free again
    assert r.status_code == 201
    page = await api.get("/api/firmware-campaigns", params={"limit": 1})
    assert [c["id"] for c in page.json()] == [r.json()["id"]]
    assert page.headers["x-next-cursor"] == str(r.json()["id"])
    cursor = page.headers["x-next-cursor"]
    older = await api.get("/api/firmware-campaigns", params={"limit": 1, "cursor": cursor})
    assert [c["id"] for c in older.json()] == [cid]
    assert (await api.get("/api/firmware-campaigns", params={"limit": 5000})).status_code == 400


async def test_a_file_in_use_cannot_be_deleted(app: CsmsApp, api: httpx.AsyncClient) -> None:
    assert (await api.put("/api/chargers/CP1", json={})).status_code == 200
    f = (await _upload(api, b"SIMFW 2\n")).json()
    r = await api.post("/api/firmware-campaigns", json={"version": "2", "file_id": f["file_id"],
                                                         "targets": {"stations": ["CP1"]}})
    assert r.status_code == 201
    r = await api.delete(f"/api/firmware-files/{f['file_id']}")
    assert r.status_code == 409 and r.json()["error"] == "conflict"


async def test_a_campaign_pages_its_stations_and_filters_them_by_state(
    app: CsmsApp, api: httpx.AsyncClient
) -> None:
    for cid in ("CP1", "CP2", "CP3"):
        assert (await api.put(f"/api/chargers/{cid}", json={})).status_code == 200
    r = await api.post("/api/firmware-campaigns", json={
        "version": "2", "location": "http://127.0.0.1:9/fw.bin",
        "targets": {"stations": ["CP3", "CP1", "CP2"]}, "wave_size": 2})
    cid = r.json()["id"]
    first = await api.get(f"/api/firmware-campaigns/{cid}", params={"limit": 2})
    assert [s["charger_id"] for s in first.json()["stations"]] == ["CP1", "CP2"]
    assert [w["counts"]["pending"] + w["counts"]["updating"] for w in first.json()["waves"]] == [2, 1]
    rest = await api.get(f"/api/firmware-campaigns/{cid}",
                         params={"limit": 2, "cursor": first.headers["x-next-cursor"]})
    assert [s["charger_id"] for s in rest.json()["stations"]] == ["CP3"]
    assert "x-next-cursor" not in rest.headers
    none = await api.get(f"/api/firmware-campaigns/{cid}", params={"state": "installed"})
    assert none.json()["stations"] == []
    assert (await api.get(f"/api/firmware-campaigns/{cid}", params={"state": "sleeping"})).status_code == 400
    assert (await api.get(f"/api/firmware-campaigns/{cid}", params={"limit": 0})).status_code == 400


async def test_a_campaign_survives_a_restart_and_goes_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, firmware={"tick_s": 0.05})
    body = {"version": "2", "location": "http://127.0.0.1:9/fw.bin", "targets": {"stations": ["CP1", "CP2"]},
            "wave_size": 1}
    async with running(settings, plugins=[firmware_plugin]) as first, \
            httpx.AsyncClient(base_url=first.api_url) as api:
        for cid in ("CP1", "CP2"):
            await api.put(f"/api/chargers/{cid}", json={})
        cid = (await api.post("/api/firmware-campaigns", json=body)).json()["id"]

        async def waiting() -> bool:
            c = (await api.get(f"/api/firmware-campaigns/{cid}")).json()
            return bool(c["stations"][0]["last_status"] == "offline")
        await wait_until(waiting, what="the first station waiting for its connection")
        assert (await api.post(f"/api/firmware-campaigns/{cid}/pause")).status_code == 200
    async with running(settings, plugins=[firmware_plugin]) as second, \
            httpx.AsyncClient(base_url=second.api_url) as api:
        c = (await api.get(f"/api/firmware-campaigns/{cid}")).json()
        assert c["state"] == "paused"
        assert [(s["charger_id"], s["wave"], s["last_status"]) for s in c["stations"]] == [
            ("CP1", 0, "offline"), ("CP2", 1, None)]  # CP1 was waiting for its station
        assert _service(second).campaigns[cid].state.value == "paused"
        assert (await api.post(f"/api/firmware-campaigns/{cid}/resume")).json()["state"] == "running"
        r = await api.post("/api/firmware-campaigns", json=body)
        assert r.status_code == 409  # its stations are still taken


async def test_a_campaign_over_a_group_takes_its_registered_members(
    app: CsmsApp, api: httpx.AsyncClient
) -> None:
    assert app.store is not None
    for cid in ("CP1", "CP2", "CP3"):
        assert (await api.put(f"/api/chargers/{cid}", json={})).status_code == 200
    await app.store.sites.set_station_groups("CP3", ["depot"])
    await app.store.sites.set_station_groups("CP1", ["depot", "north"])
    r = await api.post("/api/firmware-campaigns", json={
        "version": "2", "location": "http://127.0.0.1:9/fw.bin", "targets": {"group": "depot"}})
    assert r.status_code == 201, r.text
    assert [s["charger_id"] for s in r.json()["stations"]] == ["CP1", "CP3"]
    r = await api.post("/api/firmware-campaigns", json={
        "version": "2", "location": "http://127.0.0.1:9/fw.bin", "targets": {"group": "nobody"}})
    assert r.status_code == 400 and "no registered station" in r.json()["detail"]


async def test_a_download_link_still_works_after_a_restart_without_a_configured_secret(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, api_token=TOKEN)
    body = b"SIMFW 3.0\n" + b"r" * 50
    async with running(settings, plugins=[firmware_plugin]) as first:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=first.api_url, headers=auth) as api:
            f = (await _upload(api, body)).json()
        token = _service(first).download_url(f["file_id"], datetime.now(UTC)).rsplit("/", 1)[1]
    key_file = settings.files_path() / "firmware-url.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    async with running(settings, plugins=[firmware_plugin]) as second, httpx.AsyncClient() as anonymous:
        r = await anonymous.get(f"{second.api_url}/firmware/{token}")
        assert r.status_code == 200 and r.content == body
