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
    sa.Column("power_type", sa.String(8), nullable=False, server_default="AC_3_PHASE"),
    sa.Column("max_power_w", sa.Integer, nullable=False),
)


def _v8_sites(conn: Connection) -> None:
    """Sites, station groups (labels) and connector specifications."""
    sites_metadata.create_all(conn)


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


MIGRATIONS: list[Callable[[Connection], Any]] = [
    _v1_initial, _v2_security, _v3_device_variables, _v4_station_events, _v5_alarms,
    _v6_transaction_start_index, _v7_audit, _v8_sites, _v13_reservations,
]


def migrate(conn: Connection) -> int:
    """Apply pending migrations; returns the schema version now in place."""
    schema_version.create(conn, checkfirst=True)
    current = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0
    for number, step in enumerate(MIGRATIONS, start=1):
        if number > current:
            step(conn)
            conn.execute(schema_version.insert().values(version=number))
    return len(MIGRATIONS)
