"""The station's profiles page in headless Chromium: profiles set, listed and cleared, the
composite schedule, display messages and monitors, against a CSMS and the simulator's chargers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from csms.app import CsmsApp, running
from csms.display.plugin import display_plugin
from csms.profiles.plugin import profiles_plugin
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from tests.conftest import make_settings
from tests.simulators.sim_support import make_charger


@pytest.fixture
async def ops_csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path), plugins=[profiles_plugin, display_plugin]) as app:
        yield app


@pytest.fixture
async def chargers(ops_csms: CsmsApp) -> AsyncIterator[tuple[VirtualCharger, VirtualCharger]]:
    pair = (make_charger(ops_csms.ocpp_url, OcppVersion.V201, "WEB-201", arrivals=None),
            make_charger(ops_csms.ocpp_url, OcppVersion.V16, "WEB-16", arrivals=None))
    tasks = [asyncio.create_task(c.run()) for c in pair]
    try:
        yield pair
    finally:
        for c in pair:
            c.stop()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)


async def test_the_profiles_page_drives_a_2_0_1_station(
    ops_csms: CsmsApp, chargers: tuple[VirtualCharger, VirtualCharger], page: Page
) -> None:
    await page.goto(ops_csms.api_url + "/#/stations/WEB-201")
    await page.get_by_role("link", name="Profiles, display, monitors").click()
    await expect(page).to_have_url(ops_csms.api_url + "/#/stations/WEB-201/profiles")
    profiles = page.locator("section[aria-labelledby=h-profiles]")
    await expect(profiles).to_contain_text("No profile set by hand.")

    form = page.get_by_role("form", name="Set a charging profile")
    await form.get_by_label("Profile id").fill("21")
    await form.get_by_label("Periods (start_s:limit, …)").fill("0:13, 120:6")
    await form.get_by_role("button", name="Set profile").click()
    row = profiles.locator("tr[data-profile='21']")
    await expect(row).to_contain_text("TxDefaultProfile")
    await expect(row).to_contain_text("0s→13, 120s→6")
    await expect(row).to_contain_text("Accepted")
    await expect(profiles.locator(".results li.ok").first).to_contain_text("SetChargingProfile 21 → Accepted")

    comp = page.get_by_role("form", name="Composite schedule")
    await comp.get_by_role("button", name="Get schedule").click()
    await expect(comp.locator("[data-status=Accepted]")).to_be_visible()
    await expect(comp.locator("tbody tr").first).to_contain_text("13")

    asked = page.get_by_role("form", name="Installed on the station")
    await asked.get_by_role("button", name="Ask the station").click()
    await expect(asked.locator("tr[data-installed='21']")).to_contain_text("operator")

    await row.get_by_role("button", name="Clear").click()
    await expect(profiles).to_contain_text("No profile set by hand.")
    await expect(profiles.locator(".results li").first).to_contain_text("ClearChargingProfile 21 → Accepted")

    shown = page.get_by_role("form", name="Set a display message")
    await shown.get_by_label("Content").fill("Welcome to the depot")
    await shown.get_by_role("button", name="Set message").click()
    display = page.locator("section[aria-labelledby=h-display]")
    await expect(display.locator("tr[data-message='1']")).to_contain_text("Welcome to the depot")
    await display.locator("tr[data-message='1']").get_by_role("button", name="Clear").click()
    await expect(display).to_contain_text("The station shows no message.")

    monitor = page.get_by_role("form", name="Add a monitor")
    await monitor.get_by_label("Type").select_option("LowerThreshold")
    await monitor.get_by_label("Value").fill("30")
    await monitor.get_by_role("button", name="Add monitor").click()
    monitors = page.locator("section[aria-labelledby=h-monitors]")
    await expect(monitors.locator(".results li.ok")).to_contain_text(
        "Monitor ChargingStation/Temperature LowerThreshold → Accepted (id 1)")
    remove = page.get_by_role("form", name="Remove a monitor")
    await remove.get_by_role("button", name="Remove monitor").click()
    await expect(monitors.locator(".results li").first).to_contain_text(
        "ClearVariableMonitoring 1 → Accepted")


async def test_a_16_station_gets_profiles_only(
    ops_csms: CsmsApp, chargers: tuple[VirtualCharger, VirtualCharger], page: Page
) -> None:
    await page.goto(ops_csms.api_url + "/#/stations/WEB-16/profiles")
    await expect(page.locator("#no-display")).to_contain_text("this station speaks 1.6")
    await expect(page.get_by_role("form", name="Installed on the station")).to_have_count(0)
    form = page.get_by_role("form", name="Set a charging profile")
    await form.get_by_label("Purpose").select_option("ChargePointMaxProfile")
    await form.get_by_label("EVSE").fill("0")
    await form.get_by_label("Profile id").fill("5")
    await form.get_by_role("button", name="Set profile").click()
    await expect(page.locator("tr[data-profile='5']")).to_contain_text("ChargePointMaxProfile")
    await form.get_by_label("Periods (start_s:limit, …)").fill("10:16")
    await form.get_by_role("button", name="Set profile").click()
    await expect(page.locator(".results li.err").first).to_contain_text("periods[0].start_s")
