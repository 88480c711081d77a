"""Local lists end to end: the real CSMS (local lists and alarms on) and the virtual charger over
real WebSockets, in both OCPP versions."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from asyncio.subprocess import PIPE, STDOUT
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from csms.alarms.plugin import alarms_plugin
from csms.app import CsmsApp, running
from csms.local_lists.plugin import local_lists_plugin
from csms.store import schema
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from simulators.local_list import Update
from simulators.metrics import Recorder
from tests.conftest import make_settings
from tests.simulators.sim_support import QUICK, VERSIONS, make_charger, wait_until
from tests.simulators.sim_support import running as charging

pytestmark = pytest.mark.e2e

TAGS = 1000
ITEMS = 250  # what the station takes per SendLocalList
OFFLINE = replace(QUICK, faults=replace(QUICK.faults, offline_min_s=6.0, offline_max_s=6.0))


@contextlib.asynccontextmanager
async def csms_with_lists(tmp_path: Path) -> AsyncIterator[tuple[CsmsApp, httpx.AsyncClient]]:
    settings = make_settings(tmp_path, local_lists={"debounce_s": 0.5, "connect_check_s": 0.2},
                             alarms={"tick_s": 0.5})
    async with (running(settings, plugins=[alarms_plugin, local_lists_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url, timeout=30) as api):
        yield app, api


async def seed_tags(app: CsmsApp, n: int) -> None:
    """``n`` accepted tags in tag group ``fleet`` (written in one statement: the setup, not the subject)."""
    assert app.store is not None
    rows = [
        {"id_tag": f"TAG{i:05d}", "status": "Accepted", "expiry": None, "parent": None, "tag_group": "fleet"}
        for i in range(n)
    ]
    async with app.store.db.write() as conn:
        await conn.execute(schema.id_tags_grouped.insert(), rows)


def station_charger(app: CsmsApp, version: OcppVersion, sid: str, **more: Any) -> VirtualCharger:
    charger = make_charger(app.ocpp_url, version, sid, arrivals=None, evses=2, **more)
    if version is OcppVersion.V16:
        charger.settings.extra.update(SendLocalListMaxLength=str(ITEMS), AllowOfflineTxForUnknownId="false")
    else:
        charger.settings.extra["LocalAuthListCtrlr/ItemsPerMessage"] = str(ITEMS)
        charger.settings.extra["AuthCtrlr/OfflineTxForUnknownIdEnabled"] = "false"
    return charger


async def registry(api: httpx.AsyncClient) -> dict[str, str]:
    r = await api.get("/api/id-tags")
    assert r.status_code == 200
    return {t["id_tag"]: t["status"] for t in r.json()}


def held(charger: VirtualCharger) -> dict[str, str]:
    return {k: e.status for k, e in charger.local_list.entries.items()}


async def in_sync(api: httpx.AsyncClient, sid: str, version: int) -> dict[str, Any] | None:
    r = await api.get(f"/api/chargers/{sid}/local-list")
    body: dict[str, Any] = r.json()
    return body if r.status_code == 200 and body["in_sync"] and body["version"] == version else None


@pytest.mark.parametrize("version", VERSIONS)
async def test_full_then_differential_sync_and_offline_authorization(
    tmp_path: Path, version: OcppVersion,
) -> None:
    sid = f"LL-{version.value}"
    async with csms_with_lists(tmp_path) as (app, api):
        await seed_tags(app, TAGS)
        r = await api.put("/api/local-list-policies/default", json={"tags": {"tag_group": "fleet"}})
        assert r.status_code == 201, r.text
        recorder = Recorder()
        charger = station_charger(app, version, sid, recorder=recorder, behaviour=OFFLINE)
        async with charging(charger):
            # first connection: a Full update of 1,000 entries, chunked by the station's 250 per message
            await wait_until(lambda: in_sync(api, sid, 4), timeout=30, what="the first sync")
            assert charger.local_list.updates == [
                Update("Full", 1, ITEMS, "Accepted"), Update("Differential", 2, ITEMS, "Accepted"),
                Update("Differential", 3, ITEMS, "Accepted"), Update("Differential", 4, ITEMS, "Accepted"),
            ]
            assert held(charger) == await registry(api) and len(held(charger)) == TAGS
            view = (await api.get(f"/api/chargers/{sid}")).json()
            assert view["local_list_version"] == charger.local_list.version == 4

            # three quick changes: one Differential update of three items
            changes = [
                api.post("/api/id-tags", json={"id_tag": "NEW00001", "group": "fleet"}),
                api.post("/api/id-tags", json={"id_tag": "TAG00002", "status": "Blocked", "group": "fleet"}),
                api.delete("/api/id-tags/TAG00003"),
                api.post("/api/id-tags", json={"id_tag": "OTHER001", "group": "other"}),  # not in the policy
            ]
            assert [(await c).status_code for c in changes] == [201, 200, 204, 201]
            await wait_until(lambda: in_sync(api, sid, 5), timeout=15, what="the differential update")
            assert charger.local_list.updates[4:] == [Update("Differential", 5, 3, "Accepted")]
            want = {k: v for k, v in (await registry(api)).items() if k != "OTHER001"}
            assert held(charger) == want and held(charger)["TAG00002"] == "Blocked"

            # offline: a listed Accepted tag starts a transaction, an unlisted or blocked one is refused
            charger.inject("offline")
            await wait_until(lambda: not charger.online, what="the charger to go offline")
            assert charger.present(1, "TAG00010") is True
            await wait_until(lambda: charger.evses[1].tx is not None, what="the offline start")
            assert charger.present(2, "OTHER001") is True
            await wait_until(lambda: recorder.counters["authorizations_rejected"] == 1, what="a refusal")
            await wait_until(lambda: charger.evses[2].ev is None, what="the refused driver to leave")
            assert charger.present(2, "TAG00002") is True
            await wait_until(lambda: recorder.counters["authorizations_rejected"] == 2,
                             what="the blocked refusal")
            assert charger.evses[2].tx is None and not charger.online

            async def delivered() -> list[dict[str, Any]]:
                r = await api.get("/api/transactions", params={"charger_id": sid})
                return [t for t in r.json() if t["id_tag"] == "TAG00010"]
            txs = await wait_until(delivered, timeout=20, what="the offline transaction to reach the CSMS")
            assert txs[0]["active"]


@pytest.mark.parametrize("version", VERSIONS)
async def test_boot_mismatch_resyncs_fully_and_failures_raise_the_alarm(
    tmp_path: Path, version: OcppVersion,
) -> None:
    sid = f"LLM-{version.value}"
    async with csms_with_lists(tmp_path) as (app, api):
        await seed_tags(app, 30)
        assert (await api.put("/api/local-list-policies/default", json={"tags": "all"})).status_code == 201
        async with charging(station_charger(app, version, sid)) as first:
            await wait_until(lambda: in_sync(api, sid, 1), timeout=15, what="the first sync")
            assert [u.update_type for u in first.local_list.updates] == ["Full"]

        # the station comes back with an empty list (version 0): the boot check finds the mismatch
        key = "LocalAuthListEnabled" if version is OcppVersion.V16 else "LocalAuthListCtrlr/Enabled"
        second = station_charger(app, version, sid)
        async with charging(second):
            await wait_until(lambda: in_sync(api, sid, 2), timeout=15, what="the resync")
            assert second.local_list.updates == [Update("Full", 2, 30, "Accepted")]
            assert held(second) == await registry(api)

            # the station stops taking lists: the sync fails, the station is out of sync, the alarm raised
            second.settings.extra[key] = "false"
            await api.post("/api/id-tags", json={"id_tag": "LATE0001"})
            alarm = await wait_until(lambda: active_alarms(api, sid), timeout=15, what="the alarm")
            assert alarm[0]["severity"] == "warning" and "out of sync" in alarm[0]["detail"]
            state = (await api.get(f"/api/chargers/{sid}/local-list")).json()
            assert not state["in_sync"] and state["error"]
            assert (await api.get(f"/api/chargers/{sid}")).json()["local_list_in_sync"] is False

            # taken again: a forced sync is Full (it was out of sync) and clears the alarm
            second.settings.extra[key] = "true"
            r = await api.post(f"/api/chargers/{sid}/local-list/sync")
            assert r.status_code == 200, r.text
            assert r.json()["ok"] and r.json()["update_type"] == "Full" and r.json()["items"] == 31
            assert "LATE0001" in held(second)
            await wait_until(lambda: no_alarm(api, sid), timeout=15, what="the alarm to clear")

        # a removed station's list record goes with it
        assert (await api.delete(f"/api/chargers/{sid}")).status_code == 204
        assert (await api.get(f"/api/chargers/{sid}/local-list")).status_code == 404


async def active_alarms(api: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    r = await api.get("/api/alarms", params={"state": "active", "charger_id": sid})
    return [a for a in r.json() if a["kind"] == "local_list_out_of_sync"]


async def no_alarm(api: httpx.AsyncClient, sid: str) -> bool:
    return not await active_alarms(api, sid)


@pytest.mark.parametrize("version", VERSIONS)
async def test_a_list_sent_by_the_raw_action_route_is_recorded_out_of_sync_and_replaced_fully(
    tmp_path: Path, version: OcppVersion,
) -> None:
    sid = f"RAW-{version.value}"
    async with csms_with_lists(tmp_path) as (app, api):
        await seed_tags(app, 5)
        r = await api.put("/api/local-list-policies/default", json={"tags": {"tag_group": "fleet"}})
        assert r.status_code == 201, r.text
        charger = station_charger(app, version, sid)
        async with charging(charger):
            await wait_until(lambda: in_sync(api, sid, 1), timeout=20, what="the first list")
            if version is OcppVersion.V16:
                raw = {"listVersion": 99, "updateType": "Full", "localAuthorizationList": [
                    {"idTag": "BYHAND", "idTagInfo": {"status": "Accepted"}}]}
            else:
                token = {"idToken": "BYHAND", "type": "ISO14443"}
                raw = {"versionNumber": 99, "updateType": "Full", "localAuthorizationList": [
                    {"idToken": token, "idTokenInfo": {"status": "Accepted"}}]}
            r = await api.post(f"/api/chargers/{sid}/actions/SendLocalList", json=raw)
            assert r.status_code == 200 and r.json()["status"] == "Accepted", r.text
            assert set(held(charger)) == {"BYHAND"}  # sent as asked
            state = (await api.get(f"/api/chargers/{sid}/local-list")).json()
            assert state["in_sync"] is False and "raw action route" in state["error"]
            outcome = (await api.post(f"/api/chargers/{sid}/local-list/sync")).json()
            assert outcome["ok"] and outcome["update_type"] == "Full", outcome
            assert set(held(charger)) == {f"TAG{i:05d}" for i in range(5)}
            assert (await api.get(f"/api/chargers/{sid}/local-list")).json()["in_sync"] is True


async def test_group_changes_through_the_api_update_the_station_without_waiting_for_reconciliation(
    tmp_path: Path,
) -> None:
    sid = "GRP-16"
    settings = make_settings(tmp_path, local_lists={"debounce_s": 0.2, "connect_check_s": 0.2,
                                                    "reconcile_s": 0})  # no periodic reconciliation
    async with (running(settings, plugins=[local_lists_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url, timeout=30) as api):
        await seed_tags(app, 5)  # tag group "fleet"
        r = await api.post("/api/id-tags", json={"id_tag": "DEPOT001", "group": "depot"})
        assert r.status_code == 201
        assert (await api.put("/api/local-list-policies/default", json={"tags": {"tag_group": "fleet"}})
                ).status_code == 201
        assert (await api.put("/api/groups/north/local-list", json={"tags": {"tag_group": "depot"}})
                ).status_code == 201
        fleet = {f"TAG{i:05d}" for i in range(5)}
        charger = station_charger(app, OcppVersion.V16, sid)
        async with charging(charger):
            await wait_until(lambda: in_sync(api, sid, 1), timeout=20, what="the first list")
            assert set(held(charger)) == fleet

            r = await api.post("/api/groups/north/members", json={"stations": [sid]})
            assert r.status_code == 200 and r.json()["added"] == 1
            await wait_until(lambda: in_sync(api, sid, 2), timeout=20, what="the list of group north")
            assert set(held(charger)) == {"DEPOT001"}

            assert (await api.delete(f"/api/groups/north/members/{sid}")).status_code == 204
            await wait_until(lambda: in_sync(api, sid, 3), timeout=20, what="the default list again")
            assert set(held(charger)) == fleet

            r = await api.put(f"/api/chargers/{sid}/placement", json={"groups": ["north"]})
            assert r.status_code == 200, r.text
            await wait_until(lambda: in_sync(api, sid, 4), timeout=20, what="the placement's list")
            assert set(held(charger)) == {"DEPOT001"}


async def run_cli(*argv: str) -> str:
    """``csms ARGV`` as its own process (it runs without the server); its output."""
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "csms", *argv, stdout=PIPE,
                                                stderr=STDOUT)
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, out
    return out.decode()


async def test_a_tag_added_with_the_cli_reaches_the_station_at_the_periodic_reconciliation(
    tmp_path: Path,
) -> None:
    sid = "CLI-16"
    settings = make_settings(tmp_path, local_lists={"connect_check_s": 0.2, "reconcile_s": 2})
    async with (running(settings, plugins=[local_lists_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url, timeout=30) as api):
        await seed_tags(app, 3)
        assert (await api.put("/api/local-list-policies/default", json={"tags": "all"})).status_code == 201
        charger = station_charger(app, OcppVersion.V16, sid)
        async with charging(charger):
            await wait_until(lambda: in_sync(api, sid, 1), timeout=20, what="the first list")
            assert "CLITAG01" in await run_cli("tags", "--db", settings.db, "add", "CLITAG01")
            await wait_until(lambda: in_sync(api, sid, 2), timeout=20, what="the reconciliation")
            assert "CLITAG01" in held(charger) and len(held(charger)) == 4
