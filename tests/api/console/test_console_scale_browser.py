"""The console over a seeded store of a few hundred stations and sessions, in headless Chromium:
server-side paging, sorting and filtering, register / edit / remove, sessions by date range, and the
pages whose API other parts of the CSMS serve (alarms, audit, station events)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from console_kit import SEED_START, TinyStation, fill_store, screenshot, station_id_of
from playwright.async_api import Page, Route, expect

from csms.alarms.plugin import alarms_plugin
from csms.app import CsmsApp, running
from tests.conftest import make_settings

DASH = "\N{EN DASH}"  # the pager writes ranges like 1-50 with an en dash


@pytest.fixture
async def seeded(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    """A CSMS with alarms over 300 stations (none connected) and 600 sessions, every 50th still open."""
    await fill_store(tmp_path / "csms.sqlite3", stations=300, sessions=600)
    async with running(make_settings(tmp_path), plugins=[alarms_plugin]) as app:
        yield app


async def test_stations_page_pages_sorts_and_filters_on_the_server(seeded: CsmsApp, page: Page) -> None:
    await page.goto(seeded.api_url + "/#/stations")
    rows = page.locator("main table tbody tr[data-station]")
    pager = page.get_by_role("navigation", name="Pages")
    await expect(rows).to_have_count(50)
    await expect(pager).to_contain_text(f"1{DASH}50 of 300")
    await expect(rows.first).to_contain_text("CP00000")
    await screenshot(page, "stations-paged")  # docs/img/console-stations.png is a curated copy

    await pager.get_by_role("button", name="Next →").click()
    await expect(pager).to_contain_text(f"51{DASH}100 of 300")
    await expect(rows.first).to_contain_text("CP00050")
    assert "offset=50" in page.url

    await page.get_by_role("button", name="Station", exact=True).click()  # sorted by id: now descending
    await expect(rows.first).to_contain_text("CP00299")
    await expect(page.locator("th[aria-sort=descending]")).to_contain_text("Station")
    await expect(pager).to_contain_text(f"1{DASH}50 of 300")

    await page.get_by_label("Search").fill("volta")
    await expect(pager).to_contain_text(f"1{DASH}50 of 100")
    await expect(rows.first).to_contain_text("CP00298")
    await page.get_by_role("button", name="Vendor", exact=True).click()
    await expect(rows.first).to_contain_text("CP00001")  # one vendor: ties in id order
    await page.get_by_label("Protocol").select_option("ocpp2.0.1")
    await expect(page.locator("main table tbody td.empty")).to_have_text("No station matches these filters.")
    await page.get_by_label("Protocol").select_option("ocpp1.6")
    await page.get_by_label("State", exact=True).select_option("offline")
    await expect(pager).to_contain_text(f"1{DASH}50 of 100")
    await page.get_by_label("State", exact=True).select_option("charging")
    await expect(pager).to_contain_text("0 of 0")


async def test_register_edit_and_remove_a_station(seeded: CsmsApp, page: Page) -> None:
    await page.goto(seeded.api_url + "/#/stations")
    await page.get_by_text("Register a station").click()
    await page.get_by_label("Station id").fill("NEW-1")
    await page.get_by_label("Security profile").select_option("1")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_text("Could not register NEW-1")).to_contain_text("need a password")
    await page.get_by_label(re.compile("^Password")).fill("correct-horse-battery-1")
    await page.get_by_role("button", name="Register").click()
    await expect(page.get_by_text("Registered NEW-1.")).to_be_visible()
    async with httpx.AsyncClient(base_url=seeded.api_url) as api:
        assert (await api.get("/api/chargers/NEW-1")).json()["security_profile"] == 1

        await page.goto(seeded.api_url + "/#/stations/NEW-1")
        reg = page.locator("section[aria-labelledby=h-reg]")
        await expect(reg.get_by_label("Security profile")).to_have_value("1")
        await reg.get_by_label("Security profile").select_option("0")
        await reg.get_by_role("button", name="Save").click()
        await expect(reg).to_contain_text("Saved: security profile 0.")
        assert (await api.get("/api/chargers/NEW-1")).json()["security_profile"] == 0

        remove = reg.get_by_role("button", name="Remove NEW-1")
        await remove.click()
        await expect(remove).to_have_text("Confirm removal")
        await remove.click()
        await expect(page).to_have_url(seeded.api_url + "/#/stations")
        assert (await api.get("/api/chargers/NEW-1")).status_code == 404


async def local_input(page: Page, at: str) -> str:
    """The value a datetime-local input shows for the instant ``at`` in the browser's time zone."""
    value: str = await page.evaluate(
        "at => { const d = new Date(at);"
        " return new Date(d - d.getTimezoneOffset() * 60000).toISOString().slice(0, 16); }", at)
    return value


async def test_sessions_page_pages_completed_sessions_within_a_date_range(
    seeded: CsmsApp, page: Page
) -> None:
    await page.goto(seeded.api_url + "/#/sessions")
    past = page.locator("section[aria-labelledby=h-past]")
    rows = past.locator("tbody tr[data-tx]")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_have_attribute("data-tx", "599")  # 600 is still open
    await expect(page.locator("section[aria-labelledby=h-active] tbody tr[data-tx]")).to_have_count(12)

    since = (SEED_START + timedelta(hours=2)).isoformat()  # transactions 25..144 started in this range,
    until = (SEED_START + timedelta(hours=12)).isoformat()  # 50 and 100 of them still open
    await past.get_by_label("Started from").fill(await local_input(page, since))
    await past.get_by_label("Started before").fill(await local_input(page, until))
    await expect(rows.first).to_have_attribute("data-tx", "144")
    pager = past.get_by_role("navigation", name="Pages")
    await pager.get_by_role("button", name="Older →").click()
    await expect(rows.first).to_have_attribute("data-tx", "93")
    await pager.get_by_role("button", name="Older →").click()
    await expect(rows).to_have_count(18)
    await expect(rows.last).to_have_attribute("data-tx", "25")
    await expect(pager.get_by_role("button", name="Older →")).to_be_disabled()
    await pager.get_by_role("button", name="← Newer").click()
    await expect(rows.first).to_have_attribute("data-tx", "93")
    assert "from=" in page.url and "to=" in page.url

    await past.get_by_role("button", name="Clear").click()
    await expect(rows).to_have_count(50)
    await past.get_by_label("Station").fill(station_id_of(7))  # its sessions: 8 and 308
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("data-tx", "308")
    await screenshot(page, "sessions-range")


def json_route(status: int, body: object) -> Callable[[Route], Awaitable[None]]:
    async def handle(route: Route) -> None:
        await route.fulfill(status=status, content_type="application/json", body=orjson.dumps(body))
    return handle


async def test_alarms_audit_and_events_say_not_available_when_the_server_has_no_such_route(
    seeded: CsmsApp, page: Page
) -> None:
    # An older CSMS answers these routes with FastAPI's plain 404: stand in for one.
    for path in ("**/api/alarms?*", "**/api/audit?*", "**/api/chargers/*/events?*"):
        await page.route(path, json_route(404, {"detail": "Not Found"}))
    await page.goto(seeded.api_url + "/#/alarms")
    await expect(page.get_by_role("heading", name="Alarms not available")).to_be_visible()
    await page.get_by_role("link", name="Audit").click()
    await expect(page.get_by_role("heading", name="Audit log not available")).to_be_visible()
    await page.goto(seeded.api_url + "/#/stations/CP00007")
    await expect(page.get_by_role("heading", name="Event history not available")).to_be_visible()
    history = page.locator("section[aria-labelledby=h-hist] tbody tr[data-tx]")
    await expect(history).to_have_count(2)
    await expect(history.first).to_have_attribute("data-tx", "308")


async def test_a_faulted_connector_shows_as_an_alarm_to_acknowledge_and_in_the_events(
    seeded: CsmsApp, page: Page, stations: list[TinyStation]
) -> None:
    cp = await TinyStation.connect(seeded.ocpp_url, station_id_of(3))
    stations.append(cp)
    await cp.boot("Acme", "AC22")
    await cp.status(1, "Faulted", error="GroundFailure")

    await page.goto(seeded.api_url + "/#/alarms")
    row = page.locator("tbody tr[data-alarm]").filter(has_text="connector_faulted")
    await expect(row).to_contain_text(station_id_of(3))
    await row.get_by_role("button", name=re.compile("^Acknowledge alarm")).click()
    await expect(row).to_contain_text("operator")
    await expect(page.locator("main")).to_contain_text(
        f"Acknowledged connector_faulted on {station_id_of(3)}")

    await page.goto(seeded.api_url + f"/#/stations/{station_id_of(3)}")
    events = page.locator("section[aria-labelledby=h-events] li[data-event]")
    await expect(events.filter(has_text="StatusNotification")).to_have_count(1)
    await expect(events.filter(has_text="StatusNotification")).to_contain_text("Faulted")
    await page.get_by_label("Event type").fill("BootNotification")
    await expect(events).to_have_count(1)
    await expect(events.first).to_contain_text("BootNotification")


async def test_audit_page_renders_its_documented_answer(seeded: CsmsApp, page: Page) -> None:
    # The audit route is not in this CSMS yet: an answer in its documented shape stands in.
    await page.route("**/api/audit?*", json_route(200, {"items": [
        {"id": 1, "at": "2026-11-01T08:00:00Z", "actor": "operator", "action": "PUT /api/chargers/CP00001",
         "target": "CP00001", "digest": "9f86d081884c7d659a2feaa0c55ad015", "result": "200"}],
        "next_cursor": None}))
    await page.goto(seeded.api_url + "/#/audit")
    await expect(page.locator("tr[data-audit='1']")).to_contain_text("PUT /api/chargers/CP00001")
