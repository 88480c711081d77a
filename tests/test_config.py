"""Configuration from file, environment and flags, with precise errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from csms.config import load_settings
from csms.errors import ConfigError


def test_precedence_is_file_then_environment_then_flags(tmp_path: Path) -> None:
    cfg = tmp_path / "csms.toml"
    cfg.write_text('ocpp_port = 9100\napi_port = 8100\n[influx]\nurl = "http://file:8086"\napi = "v1"\n')
    s = load_settings(cfg, {"api_port": 8300}, environ={"CSMS_OCPP_PORT": "9200",
                                                       "CSMS_INFLUX_URL": "http://env:8086"})
    assert (s.ocpp_port, s.api_port) == (9200, 8300)
    assert s.influx.url == "http://env:8086" and s.influx.api == "v1"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"ocpp_port: .*'abc'.*CSMS_OCPP_PORT"):
        load_settings(None, None, environ={"CSMS_OCPP_PORT": "abc"})


def test_unknown_key_in_file_is_reported(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("ocpp_prot = 1\n")
    with pytest.raises(ConfigError, match="ocpp_prot: unknown setting"):
        load_settings(cfg, None, environ={})


def test_missing_and_broken_files_are_reported(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", None, environ={})
    bad = tmp_path / "bad.toml"
    bad.write_text("ocpp_port = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, None, environ={})


def test_boolean_environment_values_are_understood() -> None:
    assert load_settings(None, None, environ={"CSMS_AUTO_REGISTER": "1"}).auto_register is True
    assert load_settings(None, None, environ={"CSMS_AUTO_REGISTER": "false"}).auto_register is False


def test_api_requires_a_token_off_loopback() -> None:
    assert not load_settings(None, {"host": "127.0.0.1"}, environ={}).api_needs_token
    assert load_settings(None, {"host": "0.0.0.0"}, environ={}).api_needs_token
