"""Telemetry: InfluxDB time series, MQTT events, Grafana dashboards."""
