"""Tables and migrations. Each migration is a function of a sync connection, applied once in order."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version", metadata, sa.Column("version", sa.Integer, nullable=False)
)

stations = sa.Table(
    "stations",
    metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("protocol", sa.String(16)),
    sa.Column("vendor", sa.String(50)),
    sa.Column("model", sa.String(50)),
    sa.Column("serial_number", sa.String(50)),
    sa.Column("firmware_version", sa.String(50)),
    sa.Column("security_profile", sa.Integer, nullable=False, server_default="0"),
    sa.Column("password_hash", sa.String(255)),
    sa.Column("registered_at", UtcDateTime),
    sa.Column("last_boot_at", UtcDateTime),
    sa.Column("last_seen_at", UtcDateTime),
)

connectors = sa.Table(
    "connectors",
    metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("evse_id", sa.Integer, primary_key=True),
    sa.Column("connector_id", sa.Integer, primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("error_code", sa.String(64)),
    sa.Column("updated_at", UtcDateTime),
)

id_tags = sa.Table(
    "id_tags",
    metadata,
    sa.Column("id_tag", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expiry", UtcDateTime),
    sa.Column("parent", sa.String(255)),
)

transactions = sa.Table(
    "transactions",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("tx_id", sa.String(64), nullable=False),
    sa.Column("protocol", sa.String(16), nullable=False),
    sa.Column("evse_id", sa.Integer, nullable=False),
    sa.Column("connector_id", sa.Integer, nullable=False),
    sa.Column("id_tag", sa.String(255)),
    sa.Column("started_at", UtcDateTime),
    sa.Column("stopped_at", UtcDateTime),
    sa.Column("meter_start_wh", sa.Float),
    sa.Column("meter_stop_wh", sa.Float),
    sa.Column("meter_last_wh", sa.Float),
    sa.Column("stop_reason", sa.String(64)),
    sa.Column("last_seq_no", sa.Integer),
    sa.Column("flags", sa.String(255), nullable=False, server_default=""),
    sa.Column("start_key", sa.String(400), unique=True),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("reservation_id", sa.Integer),  # the reservation the session consumed (migration 13)
    sa.UniqueConstraint("station_id", "tx_id", name="uq_transactions_station_tx"),
)
sa.Index("ix_transactions_active", transactions.c.station_id, transactions.c.stopped_at)

transaction_events = sa.Table(
    "transaction_events",
    metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("tx_id", sa.String(64), primary_key=True),
    sa.Column("seq_no", sa.Integer, primary_key=True),
    sa.Column("event_type", sa.String(16), nullable=False),
    sa.Column("trigger_reason", sa.String(64)),
    sa.Column("ts", UtcDateTime, nullable=False),
    sa.Column("offline", sa.Boolean, nullable=False),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("meter_wh", sa.Float),
)

security_events = sa.Table(
    "security_events",
    metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("kind", sa.String(64), nullable=False),
    sa.Column("ts", UtcDateTime, nullable=False),
    sa.Column("tech_info", sa.String(255)),
    sa.Column("received_at", UtcDateTime, nullable=False),
)


def _v1_initial(conn: Connection) -> None:
    metadata.create_all(conn)


# Tables added after version 1 live in their own MetaData, so version 1 never changes.
security_metadata = sa.MetaData()

password_rotations = sa.Table(
    "password_rotations",
    security_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("pending_hash", sa.String(255), nullable=False),
    sa.Column("base_hash", sa.String(255)),  # the password it replaces; stale once that changes
    sa.Column("requested_at", UtcDateTime, nullable=False),
)

certificates = sa.Table(
    "certificates",
    security_metadata,
    sa.Column("serial", sa.String(64), primary_key=True),
    sa.Column("station_id", sa.String(48), nullable=False, index=True),
    sa.Column("subject", sa.String(255), nullable=False),
    sa.Column("not_before", UtcDateTime, nullable=False),
    sa.Column("not_after", UtcDateTime, nullable=False),
    sa.Column("pem", sa.Text, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("issued_at", UtcDateTime, nullable=False),
)


def _v2_security(conn: Connection) -> None:
    """Pending password rotations and certificates issued by the CSMS's CA."""
    security_metadata.create_all(conn)


device_metadata = sa.MetaData()

device_variables = sa.Table(
    "device_variables",
    device_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    # key: Component(instance)[evse.connector]/Variable(instance)/type (core.device_report.variable_name)
    sa.Column("name", sa.String(255), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),  # 2.0.1 attribute values are up to 2,500 characters
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


def _v3_device_variables(conn: Connection) -> None:
    """The variables stations reported (2.0.1 NotifyReport), kept across restarts."""
    device_metadata.create_all(conn)


events_metadata = sa.MetaData()

station_events = sa.Table(
    "station_events",
    events_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),  # received by the CSMS
    sa.Column("station_time", UtcDateTime),  # the message's own timestamp, if any
    sa.Column("type", sa.String(64), nullable=False),  # the OCPP action
    sa.Column("data", sa.Text, nullable=False),  # the payload as received, JSON
)
_ev = station_events.c
sa.Index("ix_station_events_station", _ev.station_id, _ev.id)  # a station's pages, newest first
sa.Index("ix_station_events_station_type", _ev.station_id, _ev.type, _ev.id)  # ... of one type
sa.Index("ix_station_events_at", _ev.at)  # retention

signed_meter_values = sa.Table(
    "signed_meter_values",
    events_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("tx_id", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("station_time", UtcDateTime),
    sa.Column("context", sa.String(32)),
    sa.Column("measurand", sa.String(64)),
    sa.Column("encoding", sa.String(64)),
    sa.Column("signing_method", sa.String(64)),
    sa.Column("public_key", sa.Text),
    sa.Column("data", sa.Text, nullable=False),
)
sa.Index("ix_signed_meter_values_tx", signed_meter_values.c.station_id, signed_meter_values.c.tx_id)


def _v4_station_events(conn: Connection) -> None:
    """Station events (kept notifications and reports) and signed meter values of transactions."""
    events_metadata.create_all(conn)


alarm_metadata = sa.MetaData()

alarms = sa.Table(
    "alarms",
    alarm_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("charger_id", sa.String(48), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("subject", sa.String(255), nullable=False, server_default=""),  # e.g. "1/2": EVSE/connector
    sa.Column("severity", sa.String(16), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("raised_at", UtcDateTime, nullable=False),
    sa.Column("cleared_at", UtcDateTime),
    sa.Column("acknowledged_at", UtcDateTime),
    sa.Column("acknowledged_by", sa.String(255)),
)
sa.Index("ix_alarms_active", alarms.c.cleared_at, alarms.c.id)
sa.Index("ix_alarms_charger", alarms.c.charger_id, alarms.c.id)

alarm_history = sa.Table(
    "alarm_history",
    alarm_metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("alarm_id", sa.Integer, sa.ForeignKey("alarms.id", ondelete="CASCADE"), nullable=False,
              index=True),
    sa.Column("action", sa.String(16), nullable=False),  # raised | acknowledged | cleared
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
)


def _v5_alarms(conn: Connection) -> None:
    """Alarms and every transition of each (raise, acknowledge, clear) with its time and actor."""
    alarm_metadata.create_all(conn)


def _v6_transaction_start_index(conn: Connection) -> None:
    """Transactions by start time (the console's date range and keyset paging), overall and per station."""
    conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_transactions_started ON transactions (started_at, station_id, tx_id)"
    ))
    conn.execute(sa.text(
        "CREATE INDEX IF NOT EXISTS ix_transactions_station_started ON transactions (station_id, started_at)"
    ))


audit_metadata = sa.MetaData()

audit = sa.Table(
    "audit",
    audit_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(128), nullable=False),
    sa.Column("target", sa.String(255), nullable=False),
    sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the parameters' canonical JSON
    sa.Column("result", sa.String(64), nullable=False),  # ok, or the API error code
)


def _v7_audit(conn: Connection) -> None:
    """The audit log of operator commands (csms.core.audit)."""
    audit_metadata.create_all(conn)


sites_metadata = sa.MetaData()

sites = sa.Table(  # shaped after OCPI 2.2.1 Location (id, name, address, city, ...)
    "sites",
    sites_metadata,
    sa.Column("site_id", sa.String(36), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("address", sa.String(255), nullable=False, server_default=""),
    sa.Column("city", sa.String(45), nullable=False, server_default=""),
    sa.Column("postal_code", sa.String(10), nullable=False, server_default=""),
    sa.Column("country", sa.String(3), nullable=False, server_default=""),  # ISO 3166-1 alpha-3
    sa.Column("latitude", sa.Float),
    sa.Column("longitude", sa.Float),
    sa.Column("operator", sa.String(255), nullable=False, server_default=""),
    sa.Column("time_zone", sa.String(64), nullable=False, server_default="UTC"),  # IANA name
    sa.Column("opening_hours", sa.Text),  # JSON: OCPI Hours ({twentyfourseven} or regular_hours)
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

station_sites = sa.Table(
    "station_sites",
    sites_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("site_id", sa.String(36), nullable=False, index=True),
)

station_groups = sa.Table(
    "station_groups",
    sites_metadata,
    sa.Column("group_name", sa.String(64), primary_key=True),
    sa.Column("station_id", sa.String(48), primary_key=True, index=True),
)

connector_specs = sa.Table(  # what a station's connectors are (OCPI Connector: standard, max power)
    "connector_specs",
    sites_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("evse_id", sa.Integer, primary_key=True),
    sa.Column("connector_id", sa.Integer, primary_key=True),
    sa.Column("standard", sa.String(32), nullable=False),  # e.g. IEC_62196_T2, IEC_62196_T2_COMBO
    sa.Column("format", sa.String(8), nullable=False, server_default="SOCKET"),  # SOCKET | CABLE
    sa.Column("power_type", sa.String(16), nullable=False, server_default="AC_3_PHASE"),
    sa.Column("max_power_w", sa.Integer, nullable=False),
)


def _v8_sites(conn: Connection) -> None:
    """Sites, station groups (labels) and connector specifications."""
    sites_metadata.create_all(conn)


tariff_metadata = sa.MetaData()

tariffs = sa.Table(  # every version of every tariff; a session is priced by the version valid at its start
    "tariffs",
    tariff_metadata,
    sa.Column("tariff_id", sa.String(36), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("body", sa.Text, nullable=False),  # csms.tariffs.codec JSON (prices as decimal strings)
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("retired_at", UtcDateTime),  # set on the last version when the tariff is withdrawn
)

tariff_assignments = sa.Table(
    "tariff_assignments",
    tariff_metadata,
    sa.Column("scope", sa.String(16), primary_key=True),  # station | tag_group | group | site | default
    sa.Column("target", sa.String(64), primary_key=True),  # '' for the default
    sa.Column("tariff_id", sa.String(36), nullable=False),
)

transaction_readings = sa.Table(  # the energy register over each transaction, for pricing by period
    "transaction_readings",
    tariff_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("tx_id", sa.String(64), primary_key=True),
    sa.Column("at", UtcDateTime, primary_key=True),
    sa.Column("register_wh", sa.String(40), nullable=False),  # decimal string
)

transaction_tariffs = sa.Table(  # the tariff (and version) in force when each transaction started
    "transaction_tariffs",
    tariff_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("tx_id", sa.String(64), primary_key=True),
    sa.Column("tariff_id", sa.String(36), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("time_zone", sa.String(64), nullable=False),
)

cdrs = sa.Table(  # a charge detail record per completed session (money as decimal strings)
    "cdrs",
    tariff_metadata,
    sa.Column("cdr_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("tx_id", sa.String(64), nullable=False),
    sa.Column("site_id", sa.String(36)),
    sa.Column("evse_id", sa.Integer, nullable=False),
    sa.Column("connector_id", sa.Integer, nullable=False),
    sa.Column("id_tag", sa.String(255)),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("stopped_at", UtcDateTime, nullable=False),
    sa.Column("energy_wh", sa.String(40), nullable=False),
    sa.Column("duration_s", sa.Integer, nullable=False),
    sa.Column("idle_s", sa.Integer, nullable=False),
    sa.Column("tariff_id", sa.String(36)),
    sa.Column("tariff_version", sa.Integer),
    sa.Column("currency", sa.String(3)),
    sa.Column("excl_vat", sa.String(40)),
    sa.Column("vat", sa.String(40)),
    sa.Column("incl_vat", sa.String(40)),
    sa.Column("breakdown", sa.Text, nullable=False),  # JSON: the cost lines
    sa.Column("stop_reason", sa.String(64)),
    sa.Column("signed_data", sa.Text, nullable=False),  # JSON: signed meter values as received
    sa.Column("flags", sa.String(255), nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("repriced_at", UtcDateTime),
    sa.UniqueConstraint("station_id", "tx_id", name="uq_cdrs_station_tx"),
)
sa.Index("ix_cdrs_stopped", cdrs.c.stopped_at, cdrs.c.cdr_id)


def _v15_tariffs(conn: Connection) -> None:
    """Tariff versions and assignments, transaction meter readings, charge detail records."""
    tariff_metadata.create_all(conn)
uploads_metadata = sa.MetaData()

uploads = sa.Table(  # diagnostics and log uploads requested from stations (csms.uploads)
    "uploads",
    uploads_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),  # also the OCPP requestId
    sa.Column("charger_id", sa.String(48), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # diagnostics | log
    sa.Column("log_type", sa.String(16)),  # DiagnosticsLog | SecurityLog (GetLog only)
    sa.Column("oldest", UtcDateTime),
    sa.Column("latest", UtcDateTime),
    sa.Column("retries", sa.Integer),
    sa.Column("retry_interval_s", sa.Integer),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("receipt", sa.String(16), nullable=False),  # waiting | receiving | received | pruned
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 of the URL's token
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("filename", sa.String(255)),
    sa.Column("size_bytes", sa.BigInteger),
    sa.Column("sha256", sa.String(64)),
    sa.Column("received_at", UtcDateTime),
    sa.Column("detail", sa.Text),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Index("ix_uploads_charger", "charger_id", "id"),
    sa.Index("ix_uploads_received", "receipt", "received_at"),
)

upload_steps = sa.Table(
    "upload_steps",
    uploads_metadata,
    sa.Column("pk", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("upload_id", sa.Integer, nullable=False, index=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("event", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text),
)


def _v10_uploads(conn: Connection) -> None:
    """Diagnostics and log uploads and each one's timeline."""
    uploads_metadata.create_all(conn)
desired_config_metadata = sa.MetaData()

desired_config_sets = sa.Table(  # csms.desired_config: one set per group, "*" for every station
    "desired_config_sets",
    desired_config_metadata,
    sa.Column("group_name", sa.String(64), primary_key=True),
    sa.Column("priority", sa.Integer, nullable=False, server_default="0"),
    sa.Column("body", sa.Text, nullable=False),  # JSON: {"ocpp1.6": {...}, "ocpp2.0.1": [...]}
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

desired_config_results = sa.Table(  # each station's last answer per key
    "desired_config_results",
    desired_config_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("key", sa.String(1000), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("detail", sa.String(255)),
    sa.Column("at", UtcDateTime, nullable=False),
)


def _v11_desired_config(conn: Connection) -> None:
    """Desired configuration sets per group and the stations' answers to them."""
    desired_config_metadata.create_all(conn)
operator_metadata = sa.MetaData()

operator_profiles = sa.Table(  # charging profiles the operator set by hand, with the station's answer
    "operator_profiles",
    operator_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("profile_id", sa.Integer, primary_key=True),
    sa.Column("evse_id", sa.Integer, nullable=False),
    sa.Column("purpose", sa.String(32), nullable=False),
    sa.Column("stack_level", sa.Integer, nullable=False),
    sa.Column("profile", sa.Text, nullable=False),  # JSON: the profile as the API takes it
    sa.Column("status", sa.String(40), nullable=False),  # the station's answer to SetChargingProfile
    sa.Column("detail", sa.Text),
    sa.Column("set_at", UtcDateTime, nullable=False),
)

operator_commands = sa.Table(  # display-message and monitoring commands and what the station answered
    "operator_commands",
    operator_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("request", sa.Text, nullable=False),  # JSON: the payload sent
    sa.Column("status", sa.String(40), nullable=False),  # the answer's status (or the failure)
    sa.Column("result", sa.Text, nullable=False),  # JSON: the answer as received ({} when none came)
    sa.Column("at", UtcDateTime, nullable=False),
)
sa.Index("ix_operator_commands_station", operator_commands.c.station_id, operator_commands.c.id)


def _v14_operator_profiles(conn: Connection) -> None:
    """Operator charging profiles and the outcomes of display-message and monitoring commands."""
    operator_metadata.create_all(conn)
firmware_metadata = sa.MetaData()

firmware_files = sa.Table(  # images kept under files_path()/firmware/<sha256>
    "firmware_files",
    firmware_metadata,
    sa.Column("file_id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

firmware_campaigns = sa.Table(
    "firmware_campaigns",
    firmware_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("state", sa.String(16), nullable=False, index=True),
    sa.Column("spec", sa.Text, nullable=False),  # JSON: csms.firmware.campaign.CampaignSpec
    sa.Column("targets", sa.Text, nullable=False),  # JSON: what the operator named
    sa.Column("file_id", sa.String(32), index=True),
    sa.Column("current_wave", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

firmware_campaign_stations = sa.Table(
    "firmware_campaign_stations",
    firmware_metadata,
    sa.Column("campaign_id", sa.Integer, primary_key=True),
    sa.Column("charger_id", sa.String(48), primary_key=True),
    sa.Column("wave", sa.Integer, nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("last_status", sa.String(255)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("request_id", sa.BigInteger),
    sa.Column("turn_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)


def _v9_firmware(conn: Connection) -> None:
    """Firmware images and campaigns with every station's progress."""
    firmware_metadata.create_all(conn)


local_list_metadata = sa.MetaData()

local_list_policies = sa.Table(  # which id tags a station group's local lists hold
    "local_list_policies",
    local_list_metadata,
    sa.Column("scope", sa.String(64), primary_key=True),  # a station group's name; "" = every station
    sa.Column("tag_group", sa.String(64)),  # NULL: every id tag
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

local_list_states = sa.Table(  # per station: the list version it accepted last and whether it is current
    "local_list_states",
    local_list_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("in_sync", sa.Boolean, nullable=False),
    sa.Column("entries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("digest", sa.String(64)),  # of the entries when in sync (csms.local_lists.rules.digest)
    sa.Column("update_type", sa.String(16)),  # of the last accepted message
    sa.Column("synced_at", UtcDateTime),  # the last time the station was found or made current
    sa.Column("attempted_at", UtcDateTime),
    sa.Column("error", sa.Text),  # why it is out of sync
)

local_list_entries = sa.Table(  # the entries each station accepted (what it holds, as far as we know)
    "local_list_entries",
    local_list_metadata,
    sa.Column("station_id", sa.String(48), primary_key=True),
    sa.Column("id_tag", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expiry", UtcDateTime),
    sa.Column("parent", sa.String(255)),
)


id_tags_grouped = sa.Table(  # ``id_tags`` as it is from version 12 on (never created from here)
    "id_tags",
    sa.MetaData(),
    sa.Column("id_tag", sa.String(255), primary_key=True),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("expiry", UtcDateTime),
    sa.Column("parent", sa.String(255)),
    sa.Column("tag_group", sa.String(64)),
)


def _v12_local_lists(conn: Connection) -> None:
    """Id tag groups (a column of ``id_tags``), local-list policies and each station's accepted list."""
    if "tag_group" not in {c["name"] for c in sa.inspect(conn).get_columns("id_tags")}:
        conn.execute(sa.text("ALTER TABLE id_tags ADD COLUMN tag_group VARCHAR(64)"))
    conn.execute(sa.text("CREATE INDEX IF NOT EXISTS ix_id_tags_tag_group ON id_tags (tag_group)"))
    local_list_metadata.create_all(conn)


reservations_metadata = sa.MetaData()

reservations = sa.Table(  # ids are the OCPP reservationId (32-bit in both versions)
    "reservations",
    reservations_metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(48), nullable=False),
    sa.Column("evse_id", sa.Integer, nullable=False),  # 0: any EVSE of the station
    sa.Column("connector_type", sa.String(20)),
    sa.Column("id_tag", sa.String(36), nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # csms.reservations.rules.Status
    sa.Column("station_answer", sa.String(32)),  # ReserveNow's status, or why none came
    sa.Column("cancel_answer", sa.String(32)),  # CancelReservation's status, or why none came
    sa.Column("transaction_id", sa.String(64)),  # the session that consumed it
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),  # when it stopped being pending or active
)
sa.Index("ix_reservations_station", reservations.c.station_id, reservations.c.id)
sa.Index("ix_reservations_open", reservations.c.status, reservations.c.expires_at)


def _v13_reservations(conn: Connection) -> None:
    """Reservations, and the reservation a transaction consumed."""
    reservations_metadata.create_all(conn)
    if "reservation_id" not in {c["name"] for c in sa.inspect(conn).get_columns("transactions")}:
        conn.execute(sa.text("ALTER TABLE transactions ADD COLUMN reservation_id INTEGER"))


cluster_metadata = sa.MetaData()

cluster_leases = sa.Table(  # csms.cluster: who runs each singleton loop, until when
    "cluster_leases",
    cluster_metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("holder", sa.String(128), nullable=False),  # the node's cluster.node_id
    sa.Column("token", sa.BigInteger, nullable=False),  # fencing token: grows on every change of holder
    sa.Column("expires_at", UtcDateTime, nullable=False),  # the database's clock
    sa.Column("acquired_at", UtcDateTime, nullable=False),
    sa.Column("renewed_at", UtcDateTime, nullable=False),
)


def _v16_leases(conn: Connection) -> None:
    """Singleton leases of the core nodes sharing the database."""
    cluster_metadata.create_all(conn)


presence_metadata = sa.MetaData()

station_presence = sa.Table(  # csms.cluster: which core serves each connected station, through which gateway
    "station_presence",
    presence_metadata,
    sa.Column("station_id", sa.String(64), primary_key=True),
    sa.Column("core", sa.String(160), nullable=False, index=True),  # the core's endpoint (node_id.token)
    sa.Column("gateway", sa.String(160), nullable=False, index=True),  # the gateway's endpoint
    sa.Column("protocol", sa.String(16), nullable=False),  # ocpp1.6 / ocpp2.0.1
    sa.Column("since", UtcDateTime, nullable=False),
)


def _v17_presence(conn: Connection) -> None:
    """Which core node serves each connected station, and through which gateway node."""
    presence_metadata.create_all(conn)


MIGRATIONS: list[Callable[[Connection], Any]] = [  # in order; append new ones
    _v1_initial,
    _v2_security,
    _v3_device_variables,
    _v4_station_events,
    _v5_alarms,
    _v6_transaction_start_index,
    _v7_audit,
    _v8_sites,
    _v9_firmware,
    _v10_uploads,
    _v11_desired_config,
    _v12_local_lists,
    _v13_reservations,
    _v14_operator_profiles,
    _v15_tariffs,
    _v16_leases,
    _v17_presence,
]


MIGRATION_LOCK_KEY = 0x0C5D5_5C4E  # PostgreSQL advisory lock held while migrating


def migrate(conn: Connection) -> int:
    """Apply pending migrations; returns the schema version now in place.

    On PostgreSQL a transaction-scoped advisory lock serialises nodes starting together: the second
    waits, then sees the first one's versions and has nothing left to do.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    for number, step in enumerate(MIGRATIONS, start=1):
        if number > current:
            step(conn)
            conn.execute(schema_version.insert().values(version=number))
    return len(MIGRATIONS)
