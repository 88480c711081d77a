"""The address stations are given for the CSMS's HTTP server (firmware downloads, log uploads)."""

from __future__ import annotations

from pathlib import Path

import structlog

from csms.app import default_plugins, running
from csms.plugins import Cleanup, PluginContext
from tests.conftest import make_settings

TOKEN = "operator-token-0123456789abcdef"


def _warnings(logs: list[dict[str, object]]) -> list[dict[str, object]]:
    return [e for e in logs if e["log_level"] == "warning" and "public_url" in str(e["event"])]


async def test_a_wildcard_host_without_public_url_starts_but_warns_that_links_name_loopback(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, host="0.0.0.0", api_token=TOKEN)
    with structlog.testing.capture_logs() as logs:
        async with running(settings, plugins=default_plugins(settings)) as app:
            assert app.parts.firmware is not None and app.parts.uploads is not None
            loopback = f"http://127.0.0.1:{app.api_port}"
            assert app.parts.firmware.public_base_url == loopback
    [warning] = _warnings(logs)
    assert warning["public_base_url"] == loopback


async def test_a_configured_public_url_is_used_and_nothing_is_said(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, host="0.0.0.0", api_token=TOKEN, public_url="https://csms.example/")
    with structlog.testing.capture_logs() as logs:
        async with running(settings, plugins=default_plugins(settings)) as app:
            assert app.parts.firmware is not None and app.parts.uploads is not None
            assert app.parts.firmware.public_base_url == "https://csms.example"
            assert app.parts.uploads.public_base == "https://csms.example"
    assert _warnings(logs) == []


async def test_plugins_are_given_the_http_address_before_they_start_anything(tmp_path: Path) -> None:
    seen: list[str] = []

    async def recorder(ctx: PluginContext) -> Cleanup | None:
        seen.append(ctx.public_base_url)
        return None

    async with running(make_settings(tmp_path), plugins=[recorder]) as app:
        assert seen == [app.api_url]
