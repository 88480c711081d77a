"""The Reservations page in headless Chromium: reserve, see it active, cancel it, see a refusal kept."""

from __future__ import annotations

from pathlib import Path

from console_kit import TinyStation, screenshot
from playwright.async_api import Page, expect

from csms.app import running
from csms.reservations.plugin import reservations_plugin
from tests.conftest import make_settings


async def test_an_operator_reserves_cancels_and_sees_a_refusal_kept(
    tmp_path: Path, stations: list[TinyStation], page: Page
) -> None:
    async with running(make_settings(tmp_path), plugins=[reservations_plugin]) as app:
        cp = await TinyStation.connect(app.ocpp_url, "CP-RES1")
        stations.append(cp)
        await cp.boot()
        await cp.status(1, "Available")
        await page.goto(app.api_url + "/#/reservations")
        await expect(page.get_by_role("heading", name="Reservations", level=1)).to_be_visible()
        await expect(page.locator('[data-nav="reservations"]')).to_have_attribute("aria-current", "page")

        panel = page.locator("section", has=page.get_by_role("heading", name="Reserve an EVSE"))
        said = panel.get_by_role("status")
        form = page.get_by_role("form", name="New reservation")
        await form.get_by_label("Charger").fill("CP-RES1")
        await form.get_by_label("EVSE / connector (0: any)").fill("1")
        await form.get_by_label("ID tag").fill("TAG-RES")
        await form.get_by_role("button", name="Reserve").click()
        await expect(said).to_contain_text("Reserved EVSE 1 of CP-RES1 for TAG-RES")
        sent = await cp.wait_call("ReserveNow")
        assert (sent["connectorId"], sent["idTag"]) == (1, "TAG-RES")
        active = page.locator("section", has=page.get_by_role("heading", name="Active"))
        row = active.locator(f'tr[data-reservation="{sent["reservationId"]}"]')
        await expect(row).to_contain_text("TAG-RES")
        await expect(row).to_contain_text("active")
        await screenshot(page, "reservations")

        await row.get_by_role("button", name=f"Cancel reservation {sent['reservationId']}").click()
        await expect(said).to_contain_text(f"Cancelled reservation {sent['reservationId']}")
        assert (await cp.wait_call("CancelReservation")) == {"reservationId": sent["reservationId"]}
        past = page.locator("section", has=page.get_by_role("heading", name="Past"))
        past_row = past.locator(f'tr[data-reservation="{sent["reservationId"]}"]')
        await expect(past_row).to_contain_text("cancelled")
        await expect(active).to_contain_text("No active reservation.")

        cp.answers["ReserveNow"] = {"status": "Occupied"}
        await form.get_by_role("button", name="Reserve").click()
        await expect(said).to_contain_text(
            "Could not reserve: the station answered Occupied")
        await expect(past).to_contain_text("rejected")
        await expect(past).to_contain_text("Occupied")
