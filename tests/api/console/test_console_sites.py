"""The sites and groups page in headless Chromium against a running CSMS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from console_kit import screenshot
from playwright.async_api import Page, expect

from csms.app import CsmsApp, running
from tests.conftest import make_settings


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path)) as app:
        yield app


async def test_sites_page_creates_a_site_and_fills_a_group(csms: CsmsApp, page: Page) -> None:
    async with httpx.AsyncClient(base_url=csms.api_url) as api:
        for sid in ("CP1", "CP2"):
            assert (await api.put(f"/api/chargers/{sid}", json={})).is_success
        await page.goto(csms.api_url + "/#/sites")
        await expect(page.get_by_role("heading", name="Sites and groups")).to_be_visible()
        await page.get_by_label("Site id (optional)").fill("harbour")
        await page.get_by_label("Name", exact=True).fill("Harbour car park")
        await page.get_by_label("City").fill("Model City")
        await page.get_by_role("button", name="Create site").click()
        await expect(page.locator("tr[data-site=harbour]")).to_contain_text("Harbour car park")
        assert [s["site_id"] for s in (await api.get("/api/sites")).json()] == ["harbour"]

        await page.get_by_label("Group", exact=True).fill("north")
        await page.get_by_label("Station ids (comma-separated)").fill("CP1, CP2")
        await page.get_by_role("button", name="Add to group").click()
        row = page.locator("tr[data-group=north]")
        await expect(row).to_contain_text("2")
        await row.get_by_role("button", name="Show members of north").click()
        await expect(page.get_by_role("status").filter(has_text="north: CP1, CP2")).to_be_visible()
        # a bad station id gets the API's answer, not a silent failure
        await page.get_by_label("Group", exact=True).fill("north")
        await page.get_by_label("Station ids (comma-separated)").fill("GHOST")
        await page.get_by_role("button", name="Add to group").click()
        await expect(page.locator("p.form-error")).to_contain_text("GHOST")
        await screenshot(page, "sites")
