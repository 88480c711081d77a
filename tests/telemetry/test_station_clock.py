"""A station whose clock runs two hours ahead: its telemetry lands at the CSMS's receive time,
its own timestamps are kept as ``station_time``, and its clock offset is reported."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from ocpp.v16 import call
from ocpp_driver import wait_until
from servers import InfluxServer

from csms.app import running
from csms.telemetry.plugin import influx_plugin
from tests.conftest import make_settings
from tests.e2e.stations import Station16, connected

AHEAD = timedelta(hours=2)


def _ahead() -> str:
    return (datetime.now(UTC) + AHEAD).isoformat()


async def test_points_of_a_station_two_hours_ahead_land_at_receive_time_and_its_offset_is_reported(
    influxdb: InfluxServer, tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, influx={"url": influxdb.url, "api": "v1", "flush_interval_s": 0.05})
    async with running(settings, plugins=[influx_plugin]) as app, \
            httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        async with connected(Station16, app.ocpp_url, "CP-AHEAD", "ocpp1.6") as station:
            await station.call(call.BootNotification(charge_point_vendor="Skew", charge_point_model="S1"))
            sent = datetime.now(UTC)
            await station.call(call.StatusNotification(connector_id=1, error_code="NoError",
                                                       status="Available", timestamp=_ahead()))
            for energy in (100, 200, 300):
                await station.call(call.MeterValues(connector_id=1, meter_value=[{
                    "timestamp": _ahead(),
                    "sampledValue": [{"value": str(energy), "measurand": "Energy.Active.Import.Register",
                                      "unit": "Wh"}, {"value": "7000", "measurand": "Power.Active.Import",
                                                      "unit": "W"}],
                }]))
            view = (await api.get("/api/chargers/CP-AHEAD")).json()
            assert abs(view["clock_offset_s"] - 7200) < 5
            metrics = (await api.get("/metrics")).text
            assert 'csms_station_clock_offset_seconds_bucket{le="86400.0"} 1.0' in metrics
            assert "csms_stations_clock_offset_beyond 1.0" in metrics
        writer = app.parts.influx
        await wait_until(lambda: writer.stats.offered > 0 and writer.stats.written >= writer.stats.offered)
    rows = influxdb.rows('SELECT "energy_wh", "station_time" FROM "meter" WHERE "station" = \'CP-AHEAD\'')
    assert len(rows) == 3
    for row in rows:
        at = datetime.fromtimestamp(row["time"] / 1e9, UTC)
        assert abs((at - sent).total_seconds()) < 5  # the receive time
        station_time = datetime.fromtimestamp(row["station_time"] / 1000, UTC)
        assert abs((station_time - at - AHEAD).total_seconds()) < 5  # the station's claim, kept
    status = influxdb.rows('SELECT "status" FROM "status" WHERE "station" = \'CP-AHEAD\'')
    assert len(status) == 1
    assert abs((datetime.fromtimestamp(status[0]["time"] / 1e9, UTC) - sent).total_seconds()) < 5
    # Grafana's default range finds them
    assert influxdb.rows('SELECT "energy_wh" FROM "meter" WHERE time > now() - 1h '
                         'AND "station" = \'CP-AHEAD\'')
