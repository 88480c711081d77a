"""Which optional parts a configuration switches on (telemetry, MQTT, balancer)."""

from __future__ import annotations

from csms.app import Plugin
from csms.config import Settings


def default_plugins(settings: Settings) -> list[Plugin]:
    """Plugins for ``settings``; parts that are not configured are simply absent."""
    from csms.balancer.plugin import balancer_plugin
    from csms.telemetry.plugin import influx_plugin, mqtt_plugin

    # telemetry first: it sees the balancer's first events; each says at start when it is off
    plugins: list[Plugin] = [influx_plugin, mqtt_plugin, balancer_plugin]
    return plugins
