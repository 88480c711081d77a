"""Configuration: defaults < TOML file < ``CSMS_*`` environment < command-line flags.

Top-level keys map to ``CSMS_<KEY>`` (``ocpp_port`` → ``CSMS_OCPP_PORT``); keys of a
section map to ``CSMS_<SECTION>_<KEY>`` (``[influx] url`` → ``CSMS_INFLUX_URL``).
Everything is validated once, at start-up, into frozen models; a bad value raises
``ConfigError`` naming the key, where it came from and what is wrong.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from csms.errors import ConfigError
from csms.gcpolicy import GcSettings


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InfluxConfig(_Section):
    """InfluxDB output; disabled while ``url`` is empty."""

    url: str = ""
    api: Literal["v1", "v2"] = "v2"
    database: str = "csms"
    retention_policy: str = ""
    username: str = ""
    password: str = ""
    org: str = "csms"
    bucket: str = "csms"
    token: str = ""
    batch_size: int = Field(1000, ge=1, le=100_000)
    flush_interval_s: float = Field(1.0, gt=0, le=60)
    buffer_dir: str = ""  # default: telemetry-buffer/ beside the SQLite database
    buffer_max_mb: int = Field(256, ge=1)
    segment_kb: int = Field(1024, ge=4)
    max_memory_points: int = Field(50_000, ge=100)
    timeout_s: float = Field(10.0, gt=0)
    retry_initial_s: float = Field(1.0, gt=0)
    retry_max_s: float = Field(30.0, gt=0)
    health_interval_s: float = Field(10.0, gt=0)
    create_database: bool = True


class MqttConfig(_Section):
    """MQTT events; disabled while ``url`` is empty (``mqtt://host:1883`` or TLS ``mqtts://host:8883``)."""

    url: str = ""
    ca_file: str = ""  # mqtts: PEM CA bundle the broker's certificate must chain to; empty = system CAs
    cert_file: str = ""  # mqtts: PEM client certificate (chain), for brokers that require one
    key_file: str = ""  # mqtts: its private key (PEM); empty when cert_file holds it
    topic_prefix: str = "csms"
    qos: int = Field(1, ge=0, le=2)
    client_id: str = ""
    username: str = ""
    password: str = ""
    outbox_max: int = Field(100_000, ge=1)
    keepalive_s: int = Field(30, ge=5)
    reconnect_max_s: float = Field(30.0, gt=0)
    timeout_s: float = Field(10.0, gt=0)
    inflight: int = Field(8, ge=1, le=10)
    meter_summaries: bool = True
    subscribe_feeders: bool = True


class BalancerConfig(_Section):
    """Feeder load balancing; off unless ``enabled`` and nodes are defined."""

    enabled: bool = False
    tick_s: float = Field(5.0, gt=0)
    hysteresis_a: float = Field(1.0, ge=0)
    min_interval_per_station_s: float = Field(5.0, ge=0)
    phase_voltage_v: float = Field(230.0, gt=0)
    resolution_a: float = Field(0.1, ge=0)
    rotation_period_s: float = Field(900.0, ge=0)
    headroom_step_a: float = Field(2.0, gt=0)
    settle_s: float = Field(30.0, ge=0)
    # a node meter (MQTT feeders/{node}/meter) silent this long: the node counts as full; 0 = never
    meter_max_age_s: float = Field(120.0, ge=0)
    nodes: tuple[dict[str, Any], ...] = ()
    evses: tuple[dict[str, Any], ...] = ()


class TlsConfig(_Section):
    """``wss://`` for security profiles 2 and 3; off while ``cert`` is empty."""

    cert: str = ""  # PEM server certificate (chain), leaf first
    key: str = ""  # PEM private key of ``cert``
    client_ca: str = ""  # PEM CA bundle that profile-3 client certificates must chain to
    port: int = Field(9443, ge=0, le=65535)
    plain: bool = True  # keep serving ws:// on ocpp_port beside wss:// (profiles 0-1)
    min_version: Literal["1.2", "1.3"] = "1.2"
    ciphers: str = ""  # OpenSSL TLS 1.2 cipher string; empty = the OCPP security suites
    client_identity: Literal["station_id", "serial_number"] = "station_id"  # what the CN must equal
    client_organization: str = ""  # when set, the client certificate's O must equal it
    read_buffer_kb: int = Field(32, ge=0, le=256)  # asyncio TLS read buffer; 0 = keep 256 KiB


class CaConfig(_Section):
    """The CA that signs station certificates (SignCertificate); built in unless cert/key are set."""

    enabled: bool = True
    cert: str = ""
    key: str = ""
    dir: str = ""  # built-in CA files; default: ca/ beside the SQLite database
    valid_days: int = Field(365, ge=1, le=3650)


class LimitsConfig(_Section):
    """Admission control and hostile-input limits of the OCPP endpoint and the API."""

    open_timeout_s: float = Field(10.0, gt=0)
    max_pre_auth_per_ip: int = Field(64, ge=0)  # 0 = unlimited
    max_pre_auth_total: int = Field(4096, ge=0)
    accept_rate: float = Field(500.0, ge=0)  # handshakes per second; 0 = unlimited
    accept_burst: int = Field(400, ge=1)
    auth_failures_per_ip: int = Field(30, ge=0)  # per minute, then 429 without checking
    max_pending_password_checks: int = Field(256, ge=1)
    max_queue: int = Field(16, ge=1)  # frames buffered per connection
    backlog: int = Field(1024, ge=1)  # listen backlog: absorbs reconnect storms without SYN drops
    api_failures_per_ip: int = Field(10, ge=0)  # failed API logins per minute, then 429


class AlarmsConfig(_Section):
    """Alarms (``csms.alarms``): their rules' thresholds and the signed webhook they are posted to."""

    enabled: bool = True
    webhook_url: str = ""  # empty: no webhook (alarms still reach the API, /metrics and MQTT)
    webhook_secret: str = ""  # HMAC-SHA256 key of the X-CSMS-Signature header
    webhook_attempts: int = Field(8, ge=1, le=100)  # then the delivery is logged and counted as failed
    webhook_retry_initial_s: float = Field(1.0, gt=0)  # back-off doubles from here, with jitter
    webhook_retry_max_s: float = Field(60.0, gt=0)
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_queue: int = Field(10_000, ge=1)  # deliveries waiting; the newest are dropped and counted past it
    offline_after_s: float = Field(0.0, ge=0)  # no traffic this long: station_offline; 0 = 3 x heartbeat
    clock_offset_max_s: float = Field(300.0, gt=0)
    tick_s: float = Field(5.0, gt=0)  # how often station_offline is evaluated


class GcConfig(_Section):
    """Garbage-collector policy of ``serve`` and ``gateway`` processes (``csms.gcpolicy``)."""

    freeze_interval_s: float = Field(1.0, ge=0)  # freeze what survived; 0 = at start-up only
    thaw_interval_s: float = Field(3600.0, ge=0)  # full collection of frozen objects; 0 = never
    threshold0: int = Field(5000, ge=1)  # young-generation allocation threshold
    threshold1: int = Field(10, ge=1)
    threshold2: int = Field(1000, ge=1)
    slow_pause_ms: float = Field(100.0, gt=0)  # log collections pausing longer than this
    thaw_after_churn: int = Field(50_000, ge=0)  # thaw early after this many connections ended; 0 = off
    min_thaw_gap_s: float = Field(300.0, ge=0)

    def policy(self) -> GcSettings:
        return GcSettings(
            freeze_interval_s=self.freeze_interval_s, thaw_interval_s=self.thaw_interval_s,
            thresholds=(self.threshold0, self.threshold1, self.threshold2),
            slow_pause_ms=self.slow_pause_ms, thaw_after_churn=self.thaw_after_churn,
            min_thaw_gap_s=self.min_thaw_gap_s,
        )


class TariffsConfig(_Section):
    """Pricing of sessions and charge detail records (csms.tariffs)."""

    enabled: bool = True
    reading_interval_s: float = Field(60.0, ge=1)  # energy readings kept per transaction, at most this often
    cost_update_interval_s: float = Field(60.0, ge=0)  # 2.0.1 CostUpdated while charging; 0 = never
    reconcile_s: float = Field(60.0, gt=0)  # how often ended transactions without a CDR are looked for


class EventsConfig(_Section):
    """Station events (kept notifications and reports): how long they are kept."""

    retention_days: float = Field(90.0, gt=0)


_WILDCARD_HOSTS = ("0.0.0.0", "::", "")


class UploadsConfig(_Section):
    """Diagnostics and log uploads (``csms.uploads``): the receiver's bounds and how long files stay."""

    enabled: bool = True
    max_mb: float = Field(50.0, gt=0, le=10_240)  # largest file a station may upload
    token_ttl_s: float = Field(6 * 3600.0, gt=0)  # how long an upload URL takes its file
    retention_days: float = Field(30.0, gt=0)  # files older than this are deleted (the record stays)
    prune_interval_s: float = Field(3600.0, gt=0)
    # longest time to read an upload's body (408 past it); an upload still marked as arriving after
    # this long broke off unseen (a crash) and its address takes a new one
    receive_timeout_s: float = Field(600.0, gt=0)


class FirmwareConfig(_Section):
    """Firmware images and campaigns (``csms.firmware``)."""

    enabled: bool = True
    max_file_bytes: int = Field(256 << 20, ge=1)  # largest image accepted by POST /api/firmware-files
    download_ttl_s: float = Field(86_400.0, gt=0)  # a download link lives this long past its retrieve time
    # HMAC key of download links; empty: a random key made once and kept in files_path()/firmware-url.key
    # (mode 0600). Nodes not sharing the files directory need it set alike.
    url_secret: str = ""
    tick_s: float = Field(1.0, gt=0)  # how often campaigns are advanced
    max_parallel_sends: int = Field(50, ge=1)  # UpdateFirmware calls in flight at once
    call_timeout_s: float = Field(30.0, gt=0)


class LocalListsConfig(_Section):
    """Local authorization lists (``csms.local_lists``): how they are kept in step with the id tags."""

    enabled: bool = True
    debounce_s: float = Field(2.0, ge=0)  # id-tag changes this close together make one update
    max_delay_s: float = Field(30.0, gt=0)  # ... but a stream of changes waits no longer than this
    connect_check_s: float = Field(2.0, ge=0)  # after a (re)connection, check the station's version
    items_per_message: int = Field(50, ge=1, le=10_000)  # when the station does not say how many fit
    full_ratio: float = Field(0.5, gt=0, le=1)  # changes above this share of the list: a Full update
    concurrency: int = Field(8, ge=1, le=256)  # stations updated at once
    reconcile_s: float = Field(3600.0, ge=0)  # re-plan every connected station this often; 0 = never
    call_timeout_s: float = Field(30.0, gt=0)


class ReservationsConfig(_Section):
    """Reservations (``csms.reservations``): how often expiry is checked, how far ahead one may reach."""

    enabled: bool = True
    tick_s: float = Field(1.0, gt=0)  # how often reservations past their expiry are marked expired
    max_duration_s: float = Field(7 * 86_400.0, gt=0)  # the latest expires_at accepted, from now


def _default_node_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class ClusterConfig(_Section):
    """Singleton election among core nodes sharing one PostgreSQL database (``csms.cluster``)."""

    node_id: str = Field(default_factory=_default_node_id, min_length=1, max_length=128)
    lease_ttl_s: float = Field(10.0, ge=1, le=3600)  # a dead holder's lease is taken over after this
    renew_s: float = Field(3.0, gt=0)  # how often the holder renews (and others try to take over)
    # the MQTT v5 broker linking gateway and core nodes, mqtt://[user:password@]host:port ("" = none)
    bus: str = ""
    bus_prefix: str = Field("csms", pattern=r"^[A-Za-z0-9_.-]+$")  # first level of every topic
    bus_qos: int = Field(1, ge=0, le=1)  # station frames: 1 survives a broker's overload queue drops
    bus_keepalive_s: int = Field(5, ge=1, le=600)  # the broker declares a silent node dead after 1.5x
    ocpp: bool = True  # False: a core node that holds no station sockets itself (``--no-ocpp``)

    @field_validator("node_id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        if any(c in value for c in "/+#$ ") or not value.isprintable():
            raise ValueError("node_id may not hold '/', '+', '#', '$', spaces or control characters")
        return value

    @field_validator("bus")
    @classmethod
    def _bus_url(cls, value: str) -> str:
        if value and not re.match(r"^mqtts?://[^/]+(:\d+)?/?$", value):
            raise ValueError("bus must look like mqtt://host:1883 (or mqtts:// for TLS)")
        return value

    @model_validator(mode="after")
    def _renew_within_ttl(self) -> ClusterConfig:
        if self.renew_s * 2 > self.lease_ttl_s:
            raise ValueError("renew_s must be at most half of lease_ttl_s")
        return self


class Settings(_Section):
    """All settings of one CSMS process."""

    host: str = "127.0.0.1"
    ocpp_port: int = Field(9000, ge=0, le=65535)
    api_port: int = Field(8080, ge=0, le=65535)
    ocpp_path: str = "/ocpp"
    # Unix socket for ``csms gateway`` processes (ADR 0005); empty: no gateways
    gateway_socket: str = ""
    db: str = "csms.sqlite3"
    db_synchronous: Literal["FULL", "NORMAL", "full", "normal"] = "FULL"
    auto_register: bool = False
    accept_unknown_tags: bool = False
    heartbeat_interval_s: int = Field(300, ge=1)
    offline_after_heartbeats: float = Field(3.0, gt=0)  # silent this many intervals: offline
    call_timeout_s: float = Field(30.0, gt=0)
    ping_interval_s: float = Field(60.0, ge=0)
    ping_timeout_s: float = Field(30.0, ge=0)
    max_message_bytes: int = Field(1 << 20, ge=1024)
    max_outbound_bytes: int = Field(0, ge=0)  # largest CALL the API sends; 0: max_message_bytes
    api_token: str = ""
    api_readonly_token: str = ""  # GET-only access to the API
    log_format: Literal["json", "console", "auto"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    influx: InfluxConfig = InfluxConfig()
    mqtt: MqttConfig = MqttConfig()
    balancer: BalancerConfig = BalancerConfig()
    tls: TlsConfig = TlsConfig()
    ca: CaConfig = CaConfig()
    limits: LimitsConfig = LimitsConfig()
    gc: GcConfig = GcConfig()
    alarms: AlarmsConfig = AlarmsConfig()
    events: EventsConfig = EventsConfig()
    tariffs: TariffsConfig = TariffsConfig()
    uploads: UploadsConfig = UploadsConfig()
    firmware: FirmwareConfig = FirmwareConfig()
    local_lists: LocalListsConfig = LocalListsConfig()
    reservations: ReservationsConfig = ReservationsConfig()
    cluster: ClusterConfig = ClusterConfig()
    # where the CSMS keeps files (firmware images, uploaded logs); default: files/ beside the SQLite
    # database, or ./csms-files with a PostgreSQL database
    files_dir: str = ""
    # base URL stations use to reach the CSMS's HTTP server (firmware downloads, log uploads), e.g.
    # https://csms.example.com; default: http://{host}:{api_port}, with 127.0.0.1 for a wildcard host
    # (0.0.0.0, ::, ""), which stations on other machines cannot reach: set it when host is a wildcard
    public_url: str = ""

    def files_path(self) -> Path:
        """The directory for kept files (``files_dir``), not created here."""
        if self.files_dir:
            return Path(self.files_dir)
        if "://" in self.db:
            return Path("csms-files")
        return Path(self.db).resolve().parent / "files"

    def public_base_url(self, api_port: int) -> str:
        """``public_url`` without a trailing slash, else the API's own address."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in _WILDCARD_HOSTS else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{api_port}"

    @property
    def public_url_is_guessed(self) -> bool:
        """No ``public_url`` and a wildcard host: the default base names 127.0.0.1."""
        return not self.public_url and self.host in _WILDCARD_HOSTS

    @property
    def api_needs_token(self) -> bool:
        """The API requires a token when bound to anything but loopback."""
        try:
            return not ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return self.host != "localhost"


_SECTIONS = {
    "influx": InfluxConfig,
    "mqtt": MqttConfig,
    "balancer": BalancerConfig,
    "tls": TlsConfig,
    "ca": CaConfig,
    "limits": LimitsConfig,
    "gc": GcConfig,
    "alarms": AlarmsConfig,
    "events": EventsConfig,
    "tariffs": TariffsConfig,
    "uploads": UploadsConfig,
    "firmware": FirmwareConfig,
    "local_lists": LocalListsConfig,
    "reservations": ReservationsConfig,
    "cluster": ClusterConfig,
}
_ALIASES = {"CSMS_ALARM_WEBHOOK_URL": ("alarms", "webhook_url"),
            "CSMS_ALARM_WEBHOOK_SECRET": ("alarms", "webhook_secret")}
"""Shorter environment names, beside the regular ``CSMS_ALARMS_*`` (which win)."""


def env_name(key: str, section: str | None = None) -> str:
    return f"CSMS_{section.upper()}_{key.upper()}" if section else f"CSMS_{key.upper()}"


def _from_env(environ: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for key in Settings.model_fields:
        if key in _SECTIONS:
            continue
        name = env_name(key)
        if name in environ:
            data[key] = environ[name]
            origin[key] = name
    for section, model in _SECTIONS.items():
        for key, field in model.model_fields.items():  # type: ignore[attr-defined]
            if field.annotation is not None and "tuple" in str(field.annotation):
                continue
            name = env_name(key, section)
            if name in environ:
                data.setdefault(section, {})[key] = environ[name]
                origin[f"{section}.{key}"] = name
    for name, (section, key) in _ALIASES.items():
        if name in environ and key not in data.get(section, {}):
            data.setdefault(section, {})[key] = environ[name]
            origin[f"{section}.{key}"] = name
    return data, origin


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        if isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = _merge(dict(out[k]), v)
        else:
            out[k] = v
    return out


def load_settings(
    config_file: str | Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build ``Settings`` from file, environment and flags (in rising priority)."""
    env = os.environ if environ is None else environ
    data: dict[str, Any] = {}
    origin: dict[str, str] = {}
    path = config_file or env.get("CSMS_CONFIG")
    if path:
        p = Path(path)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {str(p)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid TOML: {exc}") from None
        for key in data:
            origin.setdefault(key, f"config file {p}")
    env_data, env_origin = _from_env(env)
    data = _merge(data, env_data)
    origin.update(env_origin)
    if overrides:
        clean = {k: v for k, v in overrides.items() if v is not None}
        data = _merge(data, clean)
        origin.update({k: "command line" for k in clean})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err["loc"])
            top = ".".join(str(x) for x in err["loc"][:2])
            source = origin.get(top) or origin.get(str(err["loc"][0]), "defaults")
            value = err.get("input")
            shown = "" if isinstance(value, dict) else f" (got {value!r})"
            msg = "unknown setting" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{loc}: {msg}{shown} [from {source}]")
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(problems)) from None
