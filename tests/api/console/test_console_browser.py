"""The console in real headless Chromium against a running CSMS and stations over real WebSockets."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any

import httpx
from console_kit import TinyStation, iso, screenshot, serve
from playwright.async_api import Page, expect

from csms.api.context import ApiContext
from csms.api.http import create_app
from csms.app import CsmsApp, running
from csms.balancer.plugin import balancer_plugin
from csms.config import load_settings
from csms.core.events import FeederLoadChanged, FeederMeterReading


async def fleet(csms: CsmsApp, stations: list[TinyStation]) -> tuple[TinyStation, TinyStation, TinyStation]:
    """Three stations: CP001 charging (1.6), CP002 faulted (1.6), CS-2001 available (2.0.1)."""
    cp1 = await TinyStation.connect(csms.ocpp_url, "CP001")
    cp2 = await TinyStation.connect(csms.ocpp_url, "CP002")
    cs3 = await TinyStation.connect(csms.ocpp_url, "CS-2001", "ocpp2.0.1")
    stations += [cp1, cp2, cs3]
    await cp1.boot("Acme", "AC22")
    await cp1.status(1, "Charging")
    await cp1.status(2, "Available")
    await cp1.meter(1, power_w=7400, current_a=10.7, energy_wh=12_345, soc=42)
    await cp2.boot("Acme", "AC11")
    await cp2.status(1, "Faulted", error="GroundFailure")
    await cs3.boot("Volta", "DC150")
    await cs3.status(1, "Available")
    return cp1, cp2, cs3


async def test_overview_lists_stations_counts_and_alerts(
    csms: CsmsApp, stations: list[TinyStation], page: Page
) -> None:
    await fleet(csms, stations)
    cp3 = await TinyStation.connect(csms.ocpp_url, "CP003")  # charging in a session
    cp4 = await TinyStation.connect(csms.ocpp_url, "CP004")  # a car plugged in, not charging yet
    cs5 = await TinyStation.connect(csms.ocpp_url, "CS-2002", "ocpp2.0.1")  # DC fast charging
    cp6 = await TinyStation.connect(csms.ocpp_url, "CP005")  # gone offline
    stations += [cp3, cp4, cs5, cp6]
    await cp3.boot("Acme", "AC22")
    await cp3.status(1, "Charging")
    tx = await cp3.start_transaction(1, "TAG-3", meter_start_wh=0)
    await cp3.meter(1, power_w=11_000, current_a=16, energy_wh=3_200, tx_id=tx)
    await cp4.boot("Wallbox", "Pulsar")
    await cp4.status(1, "Preparing")
    await cs5.boot("Volta", "DC150")
    await cs5.status(1, "Occupied")
    await cs5.meter(1, power_w=50_000, current_a=72, energy_wh=20_000, soc=63)
    await cp6.boot("Acme", "AC11")
    await cp6.close()
    await page.goto(csms.api_url + "/")

    table = page.locator("section[aria-labelledby=h-stations] table")
    for sid in ("CP001", "CP002", "CS-2001", "CP003", "CP004", "CS-2002", "CP005"):
        await expect(table.get_by_role("link", name=sid)).to_be_visible()
    await expect(page.locator("#kpi-online")).to_contain_text("6of 7 registered")
    await expect(page.locator("#kpi-charging .kpi-value")).to_have_text("3")
    await expect(page.locator("#kpi-power .kpi-value")).to_have_text("68.4")  # 7.4 + 11 + 50 kW
    await expect(page.locator("#kpi-sessions .kpi-value")).to_have_text("1")
    alerts = page.locator("section[aria-labelledby=h-alerts] tbody tr")
    await expect(alerts).to_have_count(2)
    await expect(alerts.nth(0)).to_contain_text("CP002")
    await expect(alerts.nth(0)).to_contain_text("GroundFailure")
    await expect(alerts.nth(1)).to_contain_text("CP005")
    protocols = page.locator("section[aria-labelledby=h-proto]")
    await expect(protocols).to_contain_text(re.compile(r"OCPP 1\.6\s*5"))
    await expect(protocols).to_contain_text(re.compile(r"OCPP 2\.0\.1\s*2"))
    await screenshot(page, "overview")  # artifacts/screenshots/; docs/img/ holds a curated copy

    # a station dropping off shows up as an alert without a reload
    await stations[2].close()
    await expect(alerts).to_have_count(3)
    await expect(page.locator("#kpi-online .kpi-value")).to_have_text("5")

    # the station list filters by text, state and protocol, and keeps the filter in the URL
    await page.get_by_role("link", name="Stations", exact=True).click()
    rows = page.locator("main table tbody tr[data-station]")
    await expect(rows).to_have_count(7)
    await page.get_by_label("Search").fill("pulsar")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("CP004")
    await page.get_by_label("Search").fill("")
    await page.get_by_label("State").select_option("offline")
    await expect(rows).to_have_count(2)
    await expect(rows.nth(0)).to_contain_text("CP005")
    await expect(rows.nth(1)).to_contain_text("CS-2001")
    assert "state=offline" in page.url
    await page.get_by_label("State").select_option("")
    await page.get_by_label("Protocol").select_option("ocpp2.0.1")
    await expect(rows).to_have_count(2)
    await page.get_by_label("Protocol").select_option("")
    await screenshot(page, "stations")


async def test_station_page_changes_without_reload_on_new_meter_values(
    csms: CsmsApp, stations: list[TinyStation], page: Page
) -> None:
    cp1, _, _ = await fleet(csms, stations)
    await page.goto(csms.api_url + "/#/stations/CP001")
    evse = page.locator("[data-evse='1']")
    await expect(evse.locator("[data-field=power]")).to_have_text("7.4")
    await expect(evse.locator("[data-field=soc]")).to_have_text("42")
    await page.evaluate("window.__sameDocument = true")

    await cp1.meter(1, power_w=11_000, current_a=16.0, energy_wh=12_900, soc=47)

    await expect(evse.locator("[data-field=power]")).to_have_text("11.0")
    await expect(evse.locator("[data-field=current]")).to_have_text("16.0")
    await expect(evse.locator("[data-field=energy]")).to_have_text("12.90")
    await expect(evse.locator("[data-field=soc]")).to_have_text("47")
    assert await page.evaluate("window.__sameDocument") is True  # no reload happened
    messages = page.locator("section[aria-labelledby=h-msgs] tbody tr")
    await expect(messages.first).to_contain_text("MeterValues")  # newest first
    await expect(page.locator("section[aria-labelledby=h-msgs]")).to_contain_text("BootNotification")

    # a status change arrives live too
    await cp1.status(2, "Preparing")
    await expect(page.locator("[data-evse='2']")).to_contain_text("Connector 2: Preparing")

    # every form control has an accessible name
    unlabelled = await page.evaluate("""() => [...document.querySelectorAll('main input, main select')]
        .filter((el) => !el.labels.length && !el.getAttribute('aria-label')).map((el) => el.outerHTML)""")
    assert unlabelled == []


async def test_unlock_reaches_the_station_and_the_answer_is_shown(
    csms: CsmsApp, stations: list[TinyStation], page: Page
) -> None:
    cp1, _, _ = await fleet(csms, stations)
    cp1.answers["UnlockConnector"] = {"status": "Unlocked"}
    cp1.answers["Reset"] = ("InternalError", "relay stuck")
    await page.goto(csms.api_url + "/#/stations/CP001")
    answers = page.get_by_role("list", name="Answers from the station")

    await page.get_by_role("button", name="Unlock", exact=True).focus()
    await page.keyboard.press("Enter")  # keyboard only

    assert await cp1.wait_call("UnlockConnector") == {"connectorId": 1}
    await expect(answers.locator("li").first).to_contain_text("UnlockConnector → Unlocked")
    await expect(answers.locator("li.ok")).to_have_count(1)

    # a CALLERROR is shown as a failure with the station's code
    await page.get_by_role("radio", name="Hard").check()
    await page.get_by_role("button", name="Reset", exact=True).click()
    assert await cp1.wait_call("Reset") == {"type": "Hard"}
    await expect(answers.locator("li.err")).to_contain_text("InternalError: relay stuck")


async def test_remote_stop_from_the_active_session_reaches_the_station(
    csms: CsmsApp, stations: list[TinyStation], page: Page
) -> None:
    cp1, _, _ = await fleet(csms, stations)
    tx_id = await cp1.start_transaction(1, "TAG-42", meter_start_wh=12_000)
    await cp1.meter(1, power_w=7400, current_a=10.7, energy_wh=12_350, tx_id=tx_id)
    await page.goto(csms.api_url + "/#/stations/CP001")
    session = page.locator("section[aria-labelledby=h-sess] tbody tr")
    await expect(session).to_have_count(1)
    await expect(session).to_contain_text("TAG-42")
    await expect(session).to_contain_text("0.35")  # 12,350 - 12,000 Wh

    await session.get_by_role("button", name=f"Stop transaction {tx_id}").click()

    assert await cp1.wait_call("RemoteStopTransaction") == {"transactionId": tx_id}
    answers = page.get_by_role("list", name="Answers from the station")
    await expect(answers.locator("li.ok")).to_contain_text("RemoteStopTransaction → Accepted")
    await page.locator("section[aria-labelledby=h-msgs] details").first.locator("summary").click()
    await screenshot(page, "station")


async def test_sessions_and_id_tags_views(
    csms: CsmsApp, stations: list[TinyStation], page: Page, api: httpx.AsyncClient
) -> None:
    cp1, _, _ = await fleet(csms, stations)
    tx_id = await cp1.start_transaction(1, "TAG-7", meter_start_wh=12_000)
    await cp1.call("StopTransaction", {"transactionId": tx_id, "meterStop": 14_500, "timestamp": iso(),
                                       "reason": "EVDisconnected"})
    tx2 = await cp1.start_transaction(1, "TAG-8", meter_start_wh=14_500)
    await page.goto(csms.api_url + "/#/sessions")
    active = page.locator("section[aria-labelledby=h-active] tbody tr[data-tx]")
    await expect(active).to_have_count(1)
    await expect(active).to_contain_text("TAG-8")
    await expect(page.locator("section[aria-labelledby=h-past] tbody tr")).to_contain_text("2.50")

    # the open session's energy follows the meter live
    await cp1.meter(1, power_w=7400, current_a=10.7, energy_wh=15_750, tx_id=tx2)
    await expect(active.locator("[data-field=energy]")).to_have_text("1.25")
    # a session ending moves it to the completed list without a reload
    await cp1.call("StopTransaction", {"transactionId": tx2, "meterStop": 16_000, "timestamp": iso()})
    await expect(active).to_have_count(0)
    await expect(page.locator("section[aria-labelledby=h-past] tbody tr")).to_have_count(2)
    await screenshot(page, "sessions")

    await page.get_by_role("link", name="ID tags").click()
    await page.get_by_label("ID tag", exact=True).fill("RFID-0001")
    await page.get_by_role("button", name="Add or update").click()
    row = page.locator("tr[data-tag='RFID-0001']")
    await expect(row).to_contain_text("Accepted")
    await row.get_by_role("button", name="Block RFID-0001").click()
    await expect(row).to_contain_text("Blocked")
    assert (await api.get("/api/id-tags")).json()[0]["status"] == "Blocked"
    await page.get_by_label("ID tag", exact=True).fill("RFID-0002")
    await page.get_by_role("button", name="Add or update").click()
    await expect(page.locator("tr[data-tag='RFID-0002']")).to_be_visible()
    await screenshot(page, "id-tags")
    delete = row.get_by_role("button", name="Delete RFID-0001")
    await delete.click()
    await expect(delete).to_have_text("Confirm delete")
    await delete.click()
    await expect(row).to_have_count(0)
    assert [t["id_tag"] for t in (await api.get("/api/id-tags")).json()] == ["RFID-0002"]


async def test_feeders_view_says_when_balancing_is_not_configured(csms: CsmsApp, page: Page) -> None:
    await page.goto(csms.api_url + "/#/feeders")
    await expect(page.get_by_role("heading", name="Load balancing not configured")).to_be_visible()


def _balanced_settings(tmp_path: Path, **balancer: Any) -> Any:
    return load_settings(None, {
        "db": str(tmp_path / "csms.sqlite3"), "ocpp_port": 0, "api_port": 0, "auto_register": True,
        "db_synchronous": "NORMAL",
        "balancer": {
            "enabled": True, "tick_s": 0.5, "min_interval_per_station_s": 0,
            "nodes": [{"id": "TR-North", "limit_a": 100},
                      {"id": "F-North-1", "parent": "TR-North", "limit_a": 64},
                      {"id": "F-North-2", "parent": "TR-North", "limit_a": 32}],
            "evses": [{"station_id": "CP001", "evse_id": 1, "node": "F-North-1"},
                      {"station_id": "CP002", "evse_id": 1, "node": "F-North-2"}],
            **balancer,
        },
    }, environ={})


async def _bar(page: Page, node: str) -> tuple[float, float]:
    """(load fill width %, allocation marker position %) of ``node``'s bar."""
    head = page.locator(f"li[data-node='{node}'] > div > .node-head")
    fill = await head.locator(".load-fill").get_attribute("style") or ""
    marker = await head.locator(".load-alloc").get_attribute("style") or ""
    width = re.search(r"width:\s*([\d.]+)%", fill)
    left = re.search(r"left:\s*calc\(([\d.]+)%", marker)
    assert width and left, (fill, marker)
    return float(width.group(1)), float(left.group(1))


async def test_feeders_view_moves_the_load_bar_when_a_limit_changes(
    tmp_path: Path, stations: list[TinyStation], page: Page
) -> None:
    """With the real balancer: the tree, each charger's allocation, and a limit change pushed live."""
    async with running(_balanced_settings(tmp_path), plugins=[balancer_plugin]) as app:
        cp1 = await TinyStation.connect(app.ocpp_url, "CP001")
        stations.append(cp1)
        await cp1.boot()
        await cp1.status(1, "Charging")
        tx_id = await cp1.start_transaction(1, "TAG-1", meter_start_wh=0)
        await cp1.meter(1, power_w=11_000, current_a=16.0, energy_wh=500, tx_id=tx_id)
        await page.goto(app.api_url + "/#/feeders")
        bar = page.get_by_role("meter", name="Load of F-North-1")
        await expect(bar).to_have_attribute("aria-valuemax", "64")
        charger = page.locator("li[data-node='F-North-1'] table tbody tr")
        await expect(charger).to_contain_text("CP001")
        await expect(charger).to_contain_text("32.0")  # the EVSE's maximum: the feeder has room
        await expect(page.locator("li[data-node='TR-North']")).to_contain_text("F-North-2")  # nested
        _, marker_before = await _bar(page, "F-North-1")
        assert marker_before == 50  # 32 A allocated of 64 A
        await page.evaluate("window.__sameDocument = true")

        async with httpx.AsyncClient(base_url=app.api_url) as client:
            r = await client.put("/api/feeders/F-North-1/limit", json={"limit_a": 20})
            assert r.status_code == 200, r.text
            node = r.json()

        await expect(bar).to_have_attribute("aria-valuemax", "20")
        await expect(charger).to_contain_text("20.0")
        fill, marker = await _bar(page, "F-North-1")
        assert marker == 100  # 20 A allocated of 20 A
        assert fill == min(100, round(100 * node["measured_a"] / 20, 6))
        assert await page.evaluate("window.__sameDocument") is True
        await screenshot(page, "feeders")
        await page.close()  # before the CSMS stops


async def test_feeders_view_flags_a_silent_meter_and_its_chargers_pause(
    tmp_path: Path, stations: list[TinyStation], page: Page
) -> None:
    """A node meter that stops reporting (``balancer.meter_max_age_s``): badge, 0 A sent, and back."""
    async with running(_balanced_settings(tmp_path, meter_max_age_s=1.0), plugins=[balancer_plugin]) as app:
        cp1 = await TinyStation.connect(app.ocpp_url, "CP001")
        stations.append(cp1)
        await cp1.boot()
        await cp1.status(1, "Charging")
        tx_id = await cp1.start_transaction(1, "TAG-1", meter_start_wh=0)

        async def meter_reports() -> None:  # every 0.2 s while it runs: never silent
            while True:
                app.bus.publish(FeederMeterReading(node_id="F-North-1", current_a=(10.0, 10.0, 10.0)))
                await asyncio.sleep(0.2)

        node = page.locator("li[data-node='F-North-1'] > div > .node-head")
        allocated = page.locator("li[data-node='F-North-1'] table tbody tr td:nth-child(3)")
        silent = node.get_by_text("meter silent")
        reports = asyncio.create_task(meter_reports())
        try:
            await page.goto(app.api_url + "/#/feeders")
            await expect(allocated).to_have_text("32.0")  # 64 A - 10 A of other load: room for 32 A
        finally:
            reports.cancel()
        await expect(silent).to_be_visible(timeout=10_000)  # no reading for over a second
        await expect(allocated).to_have_text("0.0")
        limits = [p["csChargingProfiles"]["chargingSchedule"]["chargingSchedulePeriod"][0]["limit"]
                  for a, p in cp1.received if a == "SetChargingProfile"
                  and p["csChargingProfiles"].get("transactionId") == tx_id]
        assert limits[-1] == 0.0, limits
        assert await page.locator("li[data-node='F-North-2'] > div > .node-head").get_by_text(
            "meter silent").count() == 0  # never metered: never stale
        reports = asyncio.create_task(meter_reports())
        try:
            await expect(silent).to_be_hidden(timeout=10_000)
            await expect(allocated).to_have_text("32.0")
        finally:
            reports.cancel()
        await page.close()  # before the CSMS stops


async def test_feeders_load_fill_follows_pushed_loads(
    csms: CsmsApp, stations: list[TinyStation], page: Page
) -> None:
    """The load fill against a stubbed ``GET /api/feeders``, then balancer ticks pushed over the bus."""
    nodes = [{"id": "TR-1", "parent_id": None, "limit_a": 400.0, "measured_a": 200.0, "allocated_a": 240.0,
              "headroom_a": 160.0, "chargers": []},
             {"id": "F-1", "parent_id": "TR-1", "limit_a": 100.0, "measured_a": 40.0, "allocated_a": 64.0,
              "headroom_a": 36.0, "chargers": [{"station_id": "CP001", "evse_id": 1, "allocated_a": 32.0},
                                                {"station_id": "CP002", "evse_id": 1, "allocated_a": 32.0}]}]
    assert csms.service is not None
    ctx = ApiContext(csms.settings, csms.service, csms.control, csms.registry, csms.metrics, csms.bus)
    app = create_app(ctx)
    app.add_api_route("/api/feeders", lambda: nodes, methods=["GET"])
    app.router.routes.insert(0, app.router.routes.pop())  # the stub answers before the real route
    async with serve(app) as url:
        await page.goto(url + "/#/feeders")
        bar = page.get_by_role("meter", name="Load of F-1")
        await expect(bar).to_have_attribute("aria-valuetext", "40.0 A of 100 A (40 %)")
        assert await _bar(page, "F-1") == (40, 64)

        csms.bus.publish(FeederLoadChanged(
            station_id="", node_id="F-1", parent_id="TR-1", limit_a=50.0, measured_a=45.0, allocated_a=50.0,
            headroom_a=0.0, evses=(("CP001", 1, 25.0), ("CP002", 1, 25.0))))

        await expect(bar).to_have_attribute("aria-valuetext", "45.0 A of 50 A (90 %)")
        assert await _bar(page, "F-1") == (90, 100)
        await expect(page.locator("li[data-node='F-1'] > div > .node-head .load-fill")).to_have_class(
            re.compile(r"\bwarn\b"))
        await expect(page.locator("li[data-node='F-1'] table tbody tr").first).to_contain_text("25.0")
        await page.close()


async def test_login_form_sets_an_httponly_cookie_when_a_token_is_required(
    tmp_path: Path, stations: list[TinyStation], page: Page
) -> None:
    settings = load_settings(None, {
        "db": str(tmp_path / "csms.sqlite3"), "ocpp_port": 0, "api_port": 0, "auto_register": True,
        "db_synchronous": "NORMAL", "api_token": "s3cret-token-for-tests",
    }, environ={})
    async with running(settings) as app:
        cp1 = await TinyStation.connect(app.ocpp_url, "CP001")
        stations.append(cp1)
        await cp1.boot()
        await page.goto(app.api_url + "/")
        assert page.url.endswith("/login")
        await page.get_by_label("API token").fill("wrong")
        await page.get_by_role("button", name="Sign in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not valid")
        await screenshot(page, "login")
        await page.get_by_label("API token").fill("s3cret-token-for-tests")
        await page.get_by_role("button", name="Sign in").click()

        overview = page.locator("section[aria-labelledby=h-stations]")
        await expect(overview.get_by_role("link", name="CP001")).to_be_visible()
        cookies = {c["name"]: c for c in await page.context.cookies()}
        assert cookies["csms_console"]["httpOnly"] is True
        assert cookies["csms_console"]["sameSite"] == "Strict"
        assert "s3cret" not in cookies["csms_console"]["value"]
        assert await page.evaluate("document.cookie") == ""  # invisible to scripts

        # actions work with the cookie; the station answers
        await page.goto(app.api_url + "/#/stations/CP001")
        await page.get_by_role("button", name="Unlock", exact=True).click()
        assert await cp1.wait_call("UnlockConnector") == {"connectorId": 1}
        # so do the views built on the operator API (its guard accepts the console cookie)
        await page.get_by_role("link", name="ID tags").click()
        await page.get_by_label("ID tag", exact=True).fill("RFID-0042")
        await page.get_by_role("button", name="Add or update").click()
        await expect(page.locator("tr[data-tag='RFID-0042']")).to_contain_text("Accepted")

        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_label("API token")).to_be_visible()
        assert "csms_console" not in {c["name"] for c in await page.context.cookies()}
        await page.close()
