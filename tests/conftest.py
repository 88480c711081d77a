"""Shared fixtures: a real CSMS on free loopback ports with a private SQLite file."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import settings

from csms.app import CsmsApp, running
from csms.config import Settings, load_settings
from csms.logging import configure_logging

configure_logging("console", "warning")

# CI gates a landing: there, every hypothesis test replays the same examples (derandomize);
# developers' runs keep exploring new ones. HYPOTHESIS_PROFILE=explore overrides in CI.
settings.register_profile("ci", derandomize=True)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "explore"))

CsmsFactory = Callable[..., Awaitable[CsmsApp]]


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings for a test CSMS: free ports, private database, no environment leaking in."""
    base: dict[str, Any] = {"db": str(tmp_path / "csms.sqlite3"), "ocpp_port": 0, "api_port": 0,
                            "auto_register": True, "db_synchronous": "NORMAL"}
    base.update(overrides)
    return load_settings(None, base, environ={})


@pytest.fixture
async def csms(tmp_path: Path) -> AsyncIterator[CsmsApp]:
    """A running CSMS with auto-registration on."""
    async with running(make_settings(tmp_path)) as app:
        yield app


@pytest.fixture
async def api(csms: CsmsApp) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the running CSMS's operator API."""
    async with httpx.AsyncClient(base_url=csms.api_url, timeout=10) as client:
        yield client
