"""Fixtures of the console tests: stations closed at the end, headless Chromium, a strict page."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from console_kit import CHROMIUM, CHROMIUM_ARGS, TinyStation
from playwright.async_api import Browser, Page, async_playwright, expect

expect.set_options(timeout=10_000)  # generous: the machine running the tests may be busy


@pytest.fixture
async def stations() -> AsyncIterator[list[TinyStation]]:
    """Stations a test connects (append them); all are closed at the end."""
    connected: list[TinyStation] = []
    yield connected
    await asyncio.gather(*(s.close() for s in connected), return_exceptions=True)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium driven by Playwright (never ``playwright install``)."""
    async with async_playwright() as pw:  # Playwright gives the browser a temporary profile
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def page(browser: Browser) -> AsyncIterator[Page]:
    """A fresh page that fails the test on any JavaScript error or console error.

    Chromium also logs every HTTP error status as a console error; the console expects
    some (a 502 for a CALLERROR, a 404 when balancing is off), so those are not errors here.
    """
    context = await browser.new_context(viewport={"width": 1360, "height": 900})
    pg = await context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    pg.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
          if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    pg.set_default_timeout(10_000)
    yield pg
    await context.close()
    assert not errors, errors
