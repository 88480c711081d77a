"""Plugin wiring: configuration keys and env vars, 'not configured' messages, Prometheus metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from ocpp_driver import drive_v16, wait_until
from servers import InfluxServer, MosquittoServer

from csms.app import default_plugins, running
from csms.config import load_settings
from csms.telemetry.plugin import default_buffer_dir, influx_plugin, mqtt_plugin
from tests.conftest import make_settings


def test_every_issue_env_var_reaches_the_settings() -> None:
    env = {
        "CSMS_INFLUX_URL": "http://influx:8086", "CSMS_INFLUX_API": "v1", "CSMS_INFLUX_DATABASE": "city",
        "CSMS_INFLUX_USERNAME": "u", "CSMS_INFLUX_PASSWORD": "p", "CSMS_INFLUX_ORG": "o",
        "CSMS_INFLUX_BUCKET": "b", "CSMS_INFLUX_TOKEN": "t", "CSMS_MQTT_URL": "mqtt://broker:1883",
        "CSMS_MQTT_TOPIC_PREFIX": "city/csms", "CSMS_MQTT_QOS": "2", "CSMS_INFLUX_BUFFER_MAX_MB": "64",
    }
    s = load_settings(None, environ=env)
    i, m = s.influx, s.mqtt
    assert (i.url, i.api, i.database, i.username, i.password, i.org, i.bucket, i.token, i.buffer_max_mb) == (
        "http://influx:8086", "v1", "city", "u", "p", "o", "b", "t", 64)
    assert (m.url, m.topic_prefix, m.qos) == ("mqtt://broker:1883", "city/csms", 2)
    assert influx_plugin in default_plugins(s) and mqtt_plugin in default_plugins(s)


def test_buffer_dir_defaults_beside_the_sqlite_database(tmp_path: Path) -> None:
    assert default_buffer_dir(make_settings(tmp_path)) == tmp_path.resolve() / "telemetry-buffer"
    explicit = make_settings(tmp_path, influx={"buffer_dir": str(tmp_path / "x")})
    assert default_buffer_dir(explicit) == tmp_path / "x"
    postgres = make_settings(tmp_path, db="postgresql://h/db")
    assert default_buffer_dir(postgres) == Path.cwd() / "telemetry-buffer"


def test_unconfigured_parts_say_so_at_start() -> None:
    script = (
        "import asyncio, types\n"
        "from csms.config import load_settings\n"
        "from csms.logging import configure_logging\n"
        "from csms.telemetry.plugin import influx_plugin, mqtt_plugin\n"
        "configure_logging('console', 'info')\n"
        "app = types.SimpleNamespace(settings=load_settings(None, environ={}))\n"
        "assert asyncio.run(influx_plugin(app)) is None and asyncio.run(mqtt_plugin(app)) is None\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         check=True)
    logs = out.stdout + out.stderr
    assert "InfluxDB not configured: telemetry disabled (set influx.url or CSMS_INFLUX_URL)" in logs
    assert "MQTT not configured: events are not published (set mqtt.url or CSMS_MQTT_URL)" in logs


async def test_pipeline_metrics_are_exported_for_prometheus(
    influxdb: InfluxServer, mosquitto: MosquittoServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, influx={"url": influxdb.url, "api": "v1", "flush_interval_s": 0.05},
                             mqtt={"url": mosquitto.url})
    async with running(settings, plugins=default_plugins(settings)) as app:
        await drive_v16(app.ocpp_url, "CPM", samples=1)
        writer, bridge = app.parts.influx, app.parts.mqtt
        await wait_until(lambda: writer.stats.written >= writer.stats.offered and not bridge.outbox)
        text = app.metrics.render().decode()
    for needle in ('csms_telemetry_points_total{outcome="written"}', "csms_telemetry_buffer_points 0.0",
                   "csms_telemetry_buffer_bytes", "csms_telemetry_influx_up 1.0",
                   'csms_mqtt_messages_total{outcome="published"}', "csms_mqtt_outbox_messages 0.0",
                   "csms_mqtt_connected 1.0"):
        assert needle in text, needle
