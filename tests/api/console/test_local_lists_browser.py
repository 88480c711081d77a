"""The Local lists page in headless Chromium: policies, per-station state, a forced sync."""

from __future__ import annotations

from pathlib import Path

import httpx
from playwright.async_api import Page, expect

from csms.app import running
from csms.local_lists.plugin import local_lists_plugin
from ocppj.versions import OcppVersion
from tests.conftest import make_settings
from tests.simulators.sim_support import make_charger, wait_until
from tests.simulators.sim_support import running as charging


async def test_local_lists_page_shows_policies_and_stations_and_syncs_one(tmp_path: Path, page: Page) -> None:
    settings = make_settings(tmp_path, local_lists={"debounce_s": 0.2, "connect_check_s": 0.1})
    async with (running(settings, plugins=[local_lists_plugin]) as app,
                httpx.AsyncClient(base_url=app.api_url) as api):
        for tag, group in (("CARD-A1", "fleet-a"), ("CARD-A2", "fleet-a"), ("CARD-B1", "fleet-b")):
            assert (await api.post("/api/id-tags", json={"id_tag": tag, "group": group})).status_code == 201
        await page.goto(app.api_url + "/#/local-lists")
        await expect(page.get_by_role("heading", name="Local lists", level=1)).to_be_visible()
        policies = page.locator("section[aria-labelledby=h-policies]")
        await expect(policies).to_contain_text("No policy")

        # the default policy, set in the form: one tag group
        await policies.get_by_label("Tags", exact=True).select_option("group")
        await policies.get_by_label("Tag group").fill("fleet-a")
        await policies.get_by_role("button", name="Set policy").click()
        row = policies.locator("tr[data-policy='']")
        await expect(row).to_contain_text("every station (default)")
        await expect(row).to_contain_text("tag group fleet-a")

        charger = make_charger(app.ocpp_url, OcppVersion.V16, "LL-CONSOLE", arrivals=None)
        async with charging(charger):
            await wait_until(lambda: charger.local_list.version == 1, what="the first sync")
            assert set(charger.local_list.entries) == {"CARD-A1", "CARD-A2"}
            await page.reload()
            station = page.locator("section[aria-labelledby=h-station-lists] tr[data-station='LL-CONSOLE']")
            await expect(station).to_contain_text("in sync")
            await expect(station.locator("td").nth(1)).to_have_text("1")
            await expect(station.locator("td").nth(2)).to_have_text("2")

            await station.get_by_role("button", name="Sync LL-CONSOLE").click()
            await expect(policies.get_by_role("status")).to_contain_text("LL-CONSOLE: up to date, version 1")

            await row.get_by_role("button", name="Remove the policy of every station").click()
            await expect(policies).to_contain_text("No policy")
