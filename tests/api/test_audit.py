"""Operator commands land in the audit log with who, what, which target, a digest and the result."""

from __future__ import annotations

import asyncio
import getpass
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
from ocpp.routing import on
from ocpp.v16 import call
from ocpp.v16 import call_result as result16

from csms.app import running
from csms.core.audit import digest
from csms.store.sql import SqlStore
from tests.conftest import make_settings
from tests.e2e.stations import Station16, connected

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "operator-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


class Stoppable16(Station16):
    @on("RemoteStopTransaction")
    async def on_remote_stop(self, transaction_id: int) -> result16.RemoteStopTransaction:
        self.received.append(("RemoteStopTransaction", {"transaction_id": transaction_id}))
        return result16.RemoteStopTransaction(status="Accepted")


async def _items(api: httpx.AsyncClient, **params: Any) -> list[dict[str, Any]]:
    r = await api.get("/api/audit", params=params, headers=BEARER)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_an_api_remote_stop_is_audited_with_its_actor_and_result(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, api_token=TOKEN)
    async with running(settings) as app, httpx.AsyncClient(base_url=app.api_url, headers=BEARER) as api:
        async with connected(Stoppable16, app.ocpp_url, "AUD1", "ocpp1.6") as cp:
            await cp.call(call.Heartbeat(), suppress=False)
            r = await api.post("/api/chargers/AUD1/actions/RemoteStopTransaction", json={"transactionId": 7})
            assert r.json() == {"status": "Accepted"}
        r = await api.post("/api/chargers/GONE/actions/Reset", json={"type": "Hard"})
        assert r.status_code == 404
        secret = "a-password-of-20-chars"
        r = await api.put("/api/chargers/AUD2", json={"security_profile": 1, "password": secret})
        assert r.is_success
        await api.get("/api/chargers")  # reads are not recorded

        put, failed, stop = await _items(api)
        assert (stop["actor"], stop["action"], stop["target"], stop["result"]) == (
            "token:operator", "RemoteStopTransaction", "AUD1", "ok")
        assert stop["digest"] == digest({"transactionId": 7}) and stop["at"].endswith("Z")
        assert (failed["action"], failed["target"], failed["result"]) == ("Reset", "GONE", "not_registered")
        assert (put["action"], put["target"], put["result"]) == ("put_charger", "AUD2", "ok")
        assert put["digest"] == digest({"security_profile": 1, "password": "<redacted>"})
        assert put["id"] > failed["id"] > stop["id"]

        first = (await api.get("/api/audit", params={"limit": 2})).json()
        rest = (await api.get("/api/audit", params={"limit": 2, "cursor": first["next_cursor"]})).json()
        assert [i["id"] for i in first["items"] + rest["items"]] == [put["id"], failed["id"], stop["id"]]
        assert rest["next_cursor"] is None
        bad = await api.get("/api/audit", params={"cursor": "x; drop"})
        assert bad.status_code == 400 and bad.json()["error"] == "bad_request"


async def test_console_actions_are_audited(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app, httpx.AsyncClient(base_url=app.api_url) as api:
        async with connected(Station16, app.ocpp_url, "AUD3", "ocpp1.6") as cp:
            await cp.call(call.Heartbeat(), suppress=False)
            r = await api.post("/console/api/stations/AUD3/actions/reset", json={"hard": True},
                               headers={"X-CSMS-Console": "1"})
            assert r.status_code == 200
        item = (await api.get("/api/audit")).json()["items"][0]
        assert (item["actor"], item["action"], item["target"]) == ("local", "reset", "AUD3")
        assert item["result"] == "ok"


def _cli(*args: str) -> int:
    """``csms`` in its own process (it configures logging for itself), on the tests' sources."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "csms", *args], env=env, capture_output=True, timeout=60)
    return done.returncode


def test_cli_changes_are_audited_as_cli_user(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.sqlite3")
    assert _cli("stations", "--db", db, "add", "CLI1", "--security-profile", "3") == 0
    assert _cli("tags", "--db", db, "add", "TAG1") == 0
    assert _cli("tags", "--db", db, "remove", "NOPE") == 1

    async def entries() -> list[tuple[str, str, str, str]]:
        store = await SqlStore.open(db)
        try:
            return [(e.actor, e.action, e.target, e.result) for e in await store.list_audit(limit=10)]
        finally:
            await store.close()

    me = f"cli:{getpass.getuser()}"
    assert asyncio.run(entries()) == [
        (me, "tags remove", "NOPE", "not_found"), (me, "tags add", "TAG1", "ok"),
        (me, "stations add", "CLI1", "ok"),
    ]
