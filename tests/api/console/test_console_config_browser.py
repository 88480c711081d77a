"""The Configuration page in headless Chromium: a set written in the editor reaches a simulated
station, the group's status counts its answers, and the drift check reads the station."""

from __future__ import annotations

from pathlib import Path

from console_kit import screenshot
from playwright.async_api import Page, expect

from csms.app import CsmsApp, running
from csms.desired_config.plugin import desired_config_plugin
from ocppj.versions import OcppVersion
from tests.conftest import make_settings
from tests.desired_config.stations import charger, wait_for

SET = '{"ocpp1.6": {"HeartbeatInterval": "300", "NoSuchKey": "1"}, "priority": 2}'


async def test_a_set_saved_in_the_console_is_applied_and_its_status_and_drift_shown(
    tmp_path: Path, page: Page
) -> None:
    async with running(make_settings(tmp_path), plugins=[desired_config_plugin]) as app:
        assert app.store is not None and app.parts.desired_config is not None
        service = app.parts.desired_config
        async with charger(app.ocpp_url, OcppVersion.V16, "CFG-UI") as station:
            await wait_for(lambda: _registered(app, "CFG-UI"), "the station's boot")
            await app.store.sites.add_to_group("depot", ["CFG-UI"])
            await page.goto(app.api_url + "/#/config")
            await expect(page.get_by_role("heading", name="Configuration")).to_be_visible()
            await expect(page.get_by_text("No desired configuration yet")).to_be_visible()

            await page.get_by_label("Group").fill("depot")
            await page.get_by_label("Set (JSON)").fill("{not json")
            await page.get_by_role("button", name="Save and apply").click()
            await expect(page.get_by_text("Not valid JSON")).to_be_visible()
            await page.get_by_label("Set (JSON)").fill('{"priority": "high"}')
            await page.get_by_role("button", name="Save and apply").click()
            await expect(page.get_by_text("priority must be an integer")).to_be_visible()

            await page.get_by_label("Set (JSON)").fill(SET)
            await page.get_by_role("button", name="Save and apply").click()
            await expect(page.get_by_text("sending it to 1 connected station(s)")).to_be_visible()
            row = page.locator('tr[data-set="depot"]')
            await expect(row).to_contain_text("HeartbeatInterval=300")
            await service.idle()
            assert station.settings.heartbeat_interval_s == 300

            await page.get_by_role("button", name="Status of depot").click()
            member = page.locator('[data-status="depot"] tr[data-station="CFG-UI"]')
            await expect(member).to_contain_text("ocpp1.6")
            cells = member.locator("td.num")
            await expect(cells).to_have_text(["2", "1", "0", "0", "1", "0", "0"])

            await page.get_by_role("button", name="Check drift of CFG-UI").click()
            drift = page.locator('[data-drift="CFG-UI"]')
            await expect(drift.locator('tr[data-key="HeartbeatInterval"]')).to_contain_text("in_sync")
            await expect(drift.locator('tr[data-key="NoSuchKey"]')).to_contain_text("not_supported")
            await expect(drift.locator("caption")).to_have_text("CFG-UI: 1 of 2 not in sync")
            await screenshot(page, "config")


async def _registered(app: CsmsApp, station_id: str) -> bool:
    assert app.service is not None
    live = app.service.live.get(station_id)
    return bool(live and live.info)
