"""Diagnostics and log uploads over real sockets: the virtual charger (1.6 GetDiagnostics, GetLog in
1.6 and 2.0.1) uploads a real file the API gives back byte for byte; an independent ``ocpp``-library
station lets the receiver's refusals (expired, double, oversize, broken multipart) be tried by hand."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from ocpp.routing import on
from ocpp.v201 import call_result as result201

from csms.app import CsmsApp, running
from csms.core.ports import SystemClock
from csms.uploads.plugin import uploads_plugin
from ocppj.versions import OcppVersion
from simulators.model import FaultConfig
from tests.conftest import make_settings
from tests.e2e.stations import Station201, connected
from tests.simulators.sim_support import QUICK, make_charger, wait_until
from tests.simulators.sim_support import running as charger_running

MAX_MB = 0.0625  # 64 KiB: the simulator's files (about 10 KB) fit, the oversize test's do not


class ShiftedClock(SystemClock):
    """The real clock, moved forward by ``shift`` (to let upload addresses expire)."""

    def __init__(self) -> None:
        self.shift = timedelta()

    def now(self) -> datetime:
        return super().now() + self.shift


@pytest.fixture
def clock() -> ShiftedClock:
    return ShiftedClock()


@pytest.fixture
async def app(tmp_path: Path, clock: ShiftedClock) -> AsyncIterator[CsmsApp]:
    settings = make_settings(tmp_path, uploads={"max_mb": MAX_MB, "token_ttl_s": 600})
    async with running(settings, clock=clock, plugins=[uploads_plugin]) as csms:
        yield csms


@pytest.fixture
async def api(app: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as client:
        yield client


async def upload_of(api: httpx.AsyncClient, upload_id: int) -> dict[str, Any]:
    r = await api.get(f"/api/uploads/{upload_id}")
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def settled(api: httpx.AsyncClient, upload_id: int, status: str, file: str) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        u = await upload_of(api, upload_id)
        return u if u["status"] == status and u["file"] == file else None
    return await wait_until(probe, what=f"upload {upload_id} {status}/{file}")


async def download_matches(api: httpx.AsyncClient, upload: dict[str, Any], sent: bytes) -> None:
    r = await api.get(f"/api/uploads/{upload['id']}/file")
    assert r.status_code == 200, r.text
    assert r.content == sent
    assert r.headers["content-disposition"] == f'attachment; filename="{upload["filename"]}"'
    assert upload["size_bytes"] == len(sent) and upload["sha256"] == hashlib.sha256(sent).hexdigest()


async def test_16_get_diagnostics_file_downloads_byte_for_byte(app: CsmsApp, api: httpx.AsyncClient) -> None:
    async with charger_running(make_charger(app.ocpp_url, OcppVersion.V16, "DIAG-16", arrivals=None)) as cp:
        await wait_until(lambda: cp.accepted, what="boot accepted")
        r = await api.post("/api/chargers/DIAG-16/diagnostics",
                           json={"start_time": "2026-12-01T00:00:00Z", "retries": 1})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["status"] == "Accepted" and created["kind"] == "diagnostics"
        assert created["filename"] == "DIAG-16-diagnostics.log" and created["file"] == "waiting"
        upload = await settled(api, created["id"], "Uploaded", "received")
        [sent] = cp.uploads.sent
        assert sent.method == "POST" and sent.ok and len(sent.body) > 4000
        assert sent.url.startswith(f"{app.api_url}/uploads/") and len(sent.url.rsplit("/", 1)[1]) >= 40
        await download_matches(api, upload, sent.body)
        events = [s["event"] for s in upload["timeline"]]
        assert events[:2] == ["Requested", "Accepted"]
        assert {"Uploading", "FileReceived", "Uploaded"} <= set(events)
        async with httpx.AsyncClient(timeout=10) as station_http:  # one upload per address
            again = await station_http.put(sent.url, content=b"again")
        assert again.status_code == 409 and again.json()["error"] == "conflict"
        metrics = (await api.get("/metrics")).text
        assert "csms_uploads_received_total 1.0" in metrics
        assert f"csms_upload_bytes_total {float(len(sent.body))}" in metrics
        assert 'csms_uploads_refused_total{reason="conflict"} 1.0' in metrics
        listed = (await api.get("/api/uploads", params={"charger_id": "DIAG-16"})).json()
        assert [u["id"] for u in listed["items"]] == [created["id"]] and listed["next_cursor"] is None


@pytest.mark.parametrize("version", [OcppVersion.V16, OcppVersion.V201])
async def test_get_log_file_downloads_byte_for_byte(
    app: CsmsApp, api: httpx.AsyncClient, version: OcppVersion
) -> None:
    station = f"LOG-{version.value}"
    async with charger_running(make_charger(app.ocpp_url, version, station, arrivals=None)) as cp:
        await wait_until(lambda: cp.accepted, what="boot accepted")
        r = await api.post(f"/api/chargers/{station}/logs", json={"log_type": "SecurityLog"})
        assert r.status_code == 201, r.text
        created = r.json()
        assert created["status"] == "Accepted" and created["log_type"] == "SecurityLog"
        assert created["filename"] == f"{station}-SecurityLog-{created['id']}.log"  # requestId is the id
        upload = await settled(api, created["id"], "Uploaded", "received")
        [sent] = cp.uploads.sent
        assert sent.method == "PUT" and sent.ok
        await download_matches(api, upload, sent.body)


async def test_failed_upload_is_reported_and_keeps_no_file(app: CsmsApp, api: httpx.AsyncClient) -> None:
    failing = replace(QUICK, faults=replace(FaultConfig(), upload_failure_share=1.0))
    charger = make_charger(app.ocpp_url, OcppVersion.V201, "FAIL-201", arrivals=None, behaviour=failing)
    async with charger_running(charger) as cp:
        await wait_until(lambda: cp.accepted, what="boot accepted")
        r = await api.post("/api/chargers/FAIL-201/logs", json={"log_type": "DiagnosticsLog"})
        assert r.status_code == 201, r.text
        upload = await settled(api, r.json()["id"], "UploadFailure", "waiting")
        assert [s.ok for s in cp.uploads.sent] == [False]
        assert upload["size_bytes"] is None and upload["download"] is None

        async def aborted() -> bool:
            return "UploadAborted" in [s["event"] for s in (await upload_of(api, upload["id"]))["timeline"]]
        await wait_until(aborted, what="the receiver saw the upload break off")
        r = await api.get(f"/api/uploads/{upload['id']}/file")
        assert r.status_code == 404 and r.json()["error"] == "not_found"
    assert not list((app.settings.files_path() / "uploads").glob("*"))  # no partial file left


class LogStation(Station201):
    """A 2.0.1 station that accepts GetLog and leaves the uploading to the test."""

    @on("GetLog")
    async def on_get_log(self, log: dict[str, Any], log_type: str, request_id: int,
                         **kwargs: Any) -> result201.GetLog:
        self.received.append(("GetLog", {"log": log, "log_type": log_type, "request_id": request_id}))
        return result201.GetLog(status="Accepted", filename="station.log")


async def requested_location(api: httpx.AsyncClient, cp: LogStation) -> tuple[int, str]:
    r = await api.post("/api/chargers/HAND-201/logs", json={
        "log_type": "DiagnosticsLog", "oldest": "2026-12-01T00:00:00Z", "latest": "2026-12-02T00:00:00Z"})
    assert r.status_code == 201, r.text
    _, payload = cp.received[-1]
    assert payload["log"]["oldest_timestamp"] == "2026-12-01T00:00:00.000Z"
    assert payload["request_id"] == r.json()["id"]
    return r.json()["id"], payload["log"]["remote_location"]


async def test_receiver_refuses_expired_double_and_oversize_uploads(
    app: CsmsApp, api: httpx.AsyncClient, clock: ShiftedClock
) -> None:
    async with connected(LogStation, app.ocpp_url, "HAND-201", "ocpp2.0.1") as cp:
        await wait_until(lambda: app.control.protocol_of("HAND-201"), what="connected")
        upload_id, url = await requested_location(api, cp)
        assert url.startswith(f"{app.api_url}/uploads/")
        async with httpx.AsyncClient(timeout=10) as station_http:  # no API token: the address is the key
            unknown = await station_http.put(url + "x", content=b"log")
            assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
            big = b"x" * (int(MAX_MB * 1024 * 1024) + 70_000)  # over the bound and the framing allowance
            declared = await station_http.put(url, content=big)  # refused by its Content-Length
            assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large"

            async def chunked() -> AsyncIterator[bytes]:  # no Content-Length: refused while streaming
                for i in range(0, len(big), 8192):
                    yield big[i:i + 8192]
            streamed = await station_http.put(url, content=chunked())
            assert streamed.status_code == 413, streamed.text
            form = b'--b\r\nContent-Disposition: form-data; name="note"\r\n\r\nno file here\r\n--b--\r\n'
            no_file = await station_http.post(url, content=form,
                                              headers={"Content-Type": "multipart/form-data; boundary=b"})
            assert no_file.status_code == 400 and no_file.json()["error"] == "bad_request"
            body = b"line 1\r\nline 2\x00\xff binary tail"
            files = {"file": ("from-form.log", body, "application/octet-stream")}
            taken = await station_http.post(url, files=files, data={"note": "multipart with a field"})
            assert taken.status_code == 201, taken.text
            assert taken.json()["sha256"] == hashlib.sha256(body).hexdigest()
            double = await station_http.put(url, content=b"second")
            assert double.status_code == 409
            assert (await api.get(f"/api/uploads/{upload_id}/file")).content == body

            expiring_id, expiring = await requested_location(api, cp)
            clock.shift = timedelta(seconds=601)
            expired = await station_http.put(expiring, content=b"late")
            assert expired.status_code == 404, expired.text
        upload = await upload_of(api, expiring_id)
        assert upload["file"] == "waiting" and upload["status"] == "Accepted"
    events = [s["event"] for s in (await upload_of(api, upload_id))["timeline"]]
    assert events == ["Requested", "Accepted", "UploadAborted", "UploadAborted", "FileReceived"]
