"""Fixtures for the telemetry tests: private real servers and a raw OCPP-J station client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import InfluxServer, MosquittoServer, VictoriaServer


@pytest.fixture
def influxdb(tmp_path: Path) -> Iterator[InfluxServer]:
    """A private influxd 1.x with an empty ``csms`` database."""
    (tmp_path / "influx").mkdir()
    server = InfluxServer(tmp_path / "influx")
    server.start()
    server.create_database()
    yield server
    server.stop()


@pytest.fixture
def victoria(tmp_path: Path) -> Iterator[VictoriaServer]:
    """A private VictoriaMetrics (InfluxDB v2 write API)."""
    (tmp_path / "vm").mkdir()
    server = VictoriaServer(tmp_path / "vm")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A private Mosquitto broker (persistent across stop/start, for the outage test)."""
    (tmp_path / "mqtt").mkdir()
    server = MosquittoServer(tmp_path / "mqtt", persistent=True)
    server.start()
    yield server
    server.stop()
