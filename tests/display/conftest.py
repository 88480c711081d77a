"""A real CSMS with the profile and display plugins, and the simulator's chargers on it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from csms.app import CsmsApp, running
from csms.display.plugin import display_plugin
from csms.profiles.plugin import profiles_plugin
from tests.conftest import make_settings


@pytest.fixture
async def ops_csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    async with running(make_settings(tmp_path), plugins=[profiles_plugin, display_plugin]) as app:
        yield app


@pytest.fixture
async def ops_api(ops_csms: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=ops_csms.api_url, timeout=15) as client:
        yield client
