"""The console's Firmware page in headless Chromium: upload an image, start a campaign over
simulated chargers (1.6 and 2.0.1), pause and resume it, and watch every station install."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from playwright.async_api import Page, expect

from simulators.firmware import FirmwareOptions
from tests.firmware.fleet import FAST, Fleet, fleet, image, specs

SLOW = replace(FAST, firmware=FirmwareOptions(step_s=0.8))  # time to pause before the second wave


async def test_firmware_page_uploads_starts_pauses_and_shows_progress(tmp_path: Path, page: Page) -> None:
    async with fleet(tmp_path, specs(2, "BR"), SLOW) as f:
        try:
            await _walk_through(page, f)
        finally:  # leave the console before the CSMS stops: its socket would report the refusal
            await page.goto("about:blank")


async def _walk_through(page: Page, f: Fleet) -> None:
    await page.goto(f.app.api_url + "/#/firmware")
    await expect(page.get_by_role("heading", name="Firmware", exact=True)).to_be_visible()
    await expect(page.get_by_text("No image uploaded yet.")).to_be_visible()
    await page.locator("input[name=image]").set_input_files(
        {"name": "charger-7.0.0.bin", "mimeType": "application/octet-stream", "buffer": image("7.0.0")})
    await page.get_by_role("button", name="Upload").click()
    await expect(page.locator("#main").get_by_role("status")).to_contain_text("Uploaded charger-7.0.0.bin")
    await expect(page.locator("tr[data-file]")).to_have_count(1)

    await page.locator("input[name=version]").fill("7.0.0")
    await page.locator("input[name=target]").fill("BR000, BR001")
    await page.locator("input[name=wave_size]").fill("1")
    await page.get_by_role("button", name="Start campaign").click()
    await expect(page.locator("#main").get_by_role("status")).to_contain_text("started over 2 stations")
    row = page.locator("tr[data-campaign]")
    await expect(row).to_have_count(1)
    await row.get_by_role("link").click()

    heading = page.get_by_role("heading", name=re.compile(r"Campaign #\d+: firmware 7.0.0"))
    await expect(heading).to_be_visible()
    await page.get_by_role("button", name=re.compile("^Pause campaign")).click()
    await expect(page.locator("#main").get_by_role("status")).to_contain_text("pause done")
    await expect(page.locator(".page-head .badge")).to_have_text("paused")
    await expect(page.locator("tr[data-station=BR000] .badge")).to_have_text("installed", timeout=30_000)
    await expect(page.locator("tr[data-station=BR001] .badge")).to_have_text("pending")  # held by the pause
    await expect(page.get_by_role("button", name=re.compile("^Abort campaign"))).to_be_visible()
    await page.get_by_role("button", name=re.compile("^Resume campaign")).click()
    await expect(page.locator(".page-head .badge")).to_have_text("done", timeout=30_000)
    stations = page.locator("tr[data-station]")
    await expect(stations).to_have_count(2)
    for sid in ("BR000", "BR001"):
        await expect(page.locator(f"tr[data-station={sid}] .badge")).to_have_text("installed")
    await expect(page.locator("tr[data-wave]")).to_have_count(2)
    await expect(page.locator("tr[data-wave='1'] td").nth(3)).to_have_text("1")  # installed column
    assert [f.chargers[s].spec.firmware_version for s in ("BR000", "BR001")] == ["7.0.0", "7.0.0"]
