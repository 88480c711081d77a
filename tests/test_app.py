"""The composition root: what it hands to plugins and to the API."""

from __future__ import annotations

import asyncio
from pathlib import Path

from csms.alarms.plugin import alarms_plugin
from csms.app import default_plugins, running
from csms.balancer.plugin import balancer_plugin
from csms.desired_config.plugin import desired_config_plugin
from csms.display.plugin import display_plugin
from csms.firmware.plugin import firmware_plugin
from csms.local_lists.plugin import local_lists_plugin
from csms.plugins import Cleanup, PluginContext
from csms.profiles.plugin import profiles_plugin
from csms.reservations.plugin import reservations_plugin
from csms.tariffs.plugin import tariffs_plugin
from csms.telemetry.plugin import influx_plugin, mqtt_plugin
from csms.uploads.plugin import uploads_plugin
from tests.conftest import make_settings


def test_telemetry_plugins_start_before_the_balancer(tmp_path: Path) -> None:
    plugins = default_plugins(make_settings(tmp_path))
    assert plugins[:4] == [influx_plugin, mqtt_plugin, balancer_plugin, alarms_plugin]
    operations = {
        tariffs_plugin,
        uploads_plugin,
        desired_config_plugin,
        profiles_plugin,
        display_plugin,
        firmware_plugin,
        local_lists_plugin,
        reservations_plugin,
    }
    assert operations <= set(plugins) and len(set(plugins)) == len(plugins)


async def test_a_plugin_gets_the_running_parts_and_its_tasks_and_cleanup_run_with_the_app(
    tmp_path: Path,
) -> None:
    seen: list[PluginContext] = []
    ran = asyncio.Event()
    cleaned: list[bool] = []

    async def plugin(ctx: PluginContext) -> Cleanup:
        seen.append(ctx)

        async def task() -> None:
            ran.set()
            await asyncio.Event().wait()

        ctx.spawn(task(), "test-plugin")

        async def cleanup() -> None:
            cleaned.append(True)

        return cleanup

    async with running(make_settings(tmp_path), plugins=[plugin]) as app:
        await asyncio.wait_for(ran.wait(), 5)
        [ctx] = seen
        assert ctx.bus is app.bus and ctx.metrics is app.metrics and ctx.service is app.service
        assert ctx.sessions is app.registry and ctx.control is app.control and ctx.parts is app.parts
        assert ctx.settings is app.settings and ctx.clock is app.clock
        assert (app.parts.influx, app.parts.mqtt, app.parts.balancer) == (None, None, None)
        assert cleaned == []
    assert cleaned == [True]


async def test_the_console_records_messages_unless_told_not_to(tmp_path: Path) -> None:
    async with running(make_settings(tmp_path)) as app:
        assert len(app.registry.taps) == 1
    async with running(make_settings(tmp_path), record_messages=False) as app:
        assert app.registry.taps == []
