"""The alarms plugin's configuration: the webhook's environment names and switching alarms off."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from csms.alarms.plugin import alarms_plugin
from csms.app import running
from csms.config import load_settings
from csms.errors import ConfigError
from tests.conftest import make_settings


def test_the_webhook_takes_its_short_and_its_section_environment_names() -> None:
    short = load_settings(None, None, environ={"CSMS_ALARM_WEBHOOK_URL": "http://hook/a",
                                               "CSMS_ALARM_WEBHOOK_SECRET": "s"})
    assert (short.alarms.webhook_url, short.alarms.webhook_secret) == ("http://hook/a", "s")
    both = load_settings(None, None, environ={"CSMS_ALARM_WEBHOOK_URL": "http://hook/a",
                                              "CSMS_ALARMS_WEBHOOK_URL": "http://hook/b"})
    assert both.alarms.webhook_url == "http://hook/b"
    assert load_settings(None, None, environ={}).alarms.enabled is True


async def test_disabled_alarms_answer_404_and_export_no_gauge(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, alarms={"enabled": False})
    async with (
        running(settings, plugins=[alarms_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url) as api,
    ):
        assert app.parts.alarms is None
        r = await api.get("/api/alarms")
        assert r.status_code == 404 and "disabled" in r.json()["detail"]
        assert "csms_alarms_active" not in (await api.get("/metrics")).text


@pytest.mark.parametrize(("alarms", "problem"), [
    ({"webhook_url": "http://127.0.0.1:9/hook"}, "webhook_secret"),
    ({"webhook_url": "ftp://example/hook", "webhook_secret": "s"}, "http:// or https://"),
    ({"webhook_url": "http://[::1", "webhook_secret": "s"}, "not a valid URL"),
])
async def test_a_webhook_without_secret_or_with_another_scheme_is_refused_at_start(
    tmp_path: Path, alarms: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        async with running(make_settings(tmp_path, alarms=alarms), plugins=[alarms_plugin]):
            pass


async def test_lost_alarm_transitions_are_exported(tmp_path: Path) -> None:
    async with (
        running(make_settings(tmp_path), plugins=[alarms_plugin]) as app,
        httpx.AsyncClient(base_url=app.api_url) as api,
    ):
        assert app.parts.alarms is not None
        assert "csms_alarm_transitions_lost_total 0.0" in (await api.get("/metrics")).text
