"""The tariffs and charge-record pages, and a station's running cost, in headless Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from console_kit import TinyStation, iso, screenshot
from playwright.async_api import Page, expect

from csms.app import CsmsApp, running
from csms.tariffs.plugin import tariffs_plugin
from tests.conftest import make_settings


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    settings = make_settings(tmp_path, accept_unknown_tags=True, tariffs={"reconcile_s": 1})
    async with running(settings, plugins=[tariffs_plugin]) as app:
        yield app


async def test_a_tariff_is_saved_assigned_previewed_and_its_sessions_listed(
    csms: CsmsApp, page: Page, stations: list[TinyStation]
) -> None:
    await page.goto(csms.api_url + "/#/tariffs")
    await page.get_by_role("button", name="Save tariff").click()  # the example: the reference tariff
    await expect(page.locator("tr[data-tariff=standard]")).to_contain_text("0.40 EUR/kWh")
    await page.get_by_label("Tariff id", exact=True).first.fill("standard")
    await page.get_by_role("button", name="Assign").click()
    await expect(page.locator("tr[data-assignment='default:']")).to_contain_text("standard")
    await page.get_by_role("button", name="Preview price").click()
    await expect(page.locator("[data-field=preview-total]")).to_contain_text("7.74 EUR")
    await screenshot(page, "tariffs")

    cp = await TinyStation.connect(csms.ocpp_url, "CP-T1")
    stations.append(cp)
    await cp.boot()
    tx = await cp.start_transaction(1, "RFID-1", meter_start_wh=0)
    await cp.meter(1, power_w=11_000, current_a=16, energy_wh=5_000, tx_id=tx)
    await page.goto(csms.api_url + "/#/stations/CP-T1")
    await expect(page.locator(f"[data-cost='{tx}']")).to_contain_text("EUR")
    stop = datetime.now(UTC) + timedelta(seconds=1)
    await cp.call("StopTransaction", {"transactionId": tx, "meterStop": 10_000, "timestamp": iso(stop)})

    async with httpx.AsyncClient(base_url=csms.api_url) as api:
        for _ in range(100):
            if (await api.get("/api/cdrs")).json():
                break
            await page.wait_for_timeout(200)
    await page.goto(csms.api_url + "/#/cdrs")
    row = page.locator("tbody tr[data-cdr]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("CP-T1")
    await expect(row).to_contain_text("standard v1")
    await expect(page.locator("[data-field=cdr-totals]")).to_contain_text("1 sessions")
    href = await page.locator("[data-field=csv]").get_attribute("href")
    assert href is not None and "format=csv" in href
    async with httpx.AsyncClient(base_url=csms.api_url) as api:
        csv_text = (await api.get(href)).text
    assert csv_text.startswith("id,charger_id,transaction_id") and "CP-T1" in csv_text
    await screenshot(page, "cdrs")
