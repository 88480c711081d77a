"""Which optional parts a configuration switches on (telemetry, MQTT, balancer)."""

from __future__ import annotations

from csms.app import Plugin
from csms.config import Settings


def default_plugins(settings: Settings) -> list[Plugin]:
    """Plugins for ``settings``; parts that are not configured are simply absent."""
    from csms.balancer.plugin import balancer_plugin

    plugins: list[Plugin] = [balancer_plugin]
    return plugins
