"""The Uploads page in headless Chromium: request a log from a virtual charger, watch it arrive,
download it through the page's link and compare it with what the charger sent."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Page, expect

from csms.app import CsmsApp, running
from csms.uploads.plugin import uploads_plugin
from ocppj.versions import OcppVersion
from tests.conftest import make_settings
from tests.simulators.sim_support import make_charger, wait_until
from tests.simulators.sim_support import running as charger_running


@pytest.fixture
async def app(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path), plugins=[uploads_plugin]) as csms:
        yield csms


async def test_uploads_page_requests_a_log_and_downloads_the_file(
    app: CsmsApp, page: Page, tmp_path: Path
) -> None:
    async with charger_running(make_charger(app.ocpp_url, OcppVersion.V201, "CS-LOGS", arrivals=None)) as cp:
        await wait_until(lambda: cp.accepted, what="boot accepted")
        await page.goto(app.api_url + "/#/uploads")
        await expect(page.get_by_role("heading", name="Uploads")).to_be_visible()
        await expect(page.get_by_text("No upload requested yet.")).to_be_visible()
        form = page.get_by_role("form", name="Request an upload")
        await form.get_by_label("Station").fill("CS-LOGS")
        await form.get_by_label("What").select_option("SecurityLog")
        await form.get_by_role("button", name="Request upload").click()
        said = page.locator("#main").get_by_role("status").first
        await expect(said).to_contain_text("requested from CS-LOGS: Accepted")
        row = page.locator("tr[data-upload]")
        await expect(row).to_have_count(1)
        await expect(row).to_contain_text("SecurityLog")
        await expect(row).to_contain_text("Uploaded", timeout=15_000)  # the page polls every 3 s
        link = row.get_by_role("link", name="Download upload")
        async with page.expect_download() as info:
            await link.click()
        download = await info.value
        assert download.suggested_filename == "CS-LOGS-SecurityLog-1.log"
        saved = tmp_path / "downloaded.log"
        await download.save_as(saved)
        [sent] = cp.uploads.sent
        assert saved.read_bytes() == sent.body
