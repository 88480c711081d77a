"""``SqlStore``: the ``Store`` port (and the security parts' ``SecurityStore``) on SQLAlchemy Core,
SQLite (aiosqlite) by default, PostgreSQL (asyncpg) when scaled out.

A thin composition of the store's parts over one ``Database`` (``csms.store.engine``):
``SqlStations`` (stations, connectors, variables, id tags), ``SqlTransactions``,
``SqlStationEvents`` (station events, signed meter values) and ``SqlSecurity`` (credentials,
certificates, security events); ``alarms`` (``SqlAlarms``) is used as a part of its own by
the alarm service, ``SqlAudit`` (operator commands) and ``SqlLocalLists`` (id tags with their
tag group, local-list policies and each station's list). Each port method is the owning
part's bound method, so a call costs no extra hop.

Every write is committed before the method returns (the data-integrity contract: no
CallResult before a durable commit).
"""

from __future__ import annotations

from csms.store.alarms import SqlAlarms
from csms.store.audit import SqlAudit
from csms.store.engine import Database
from csms.store.local_lists import SqlLocalLists
from csms.store.security import SqlSecurity
from csms.store.sites import SqlSites
from csms.store.station_events import SqlStationEvents
from csms.store.stations import SqlStations
from csms.store.transactions import SqlTransactions


class SqlStore:
    """SQL implementation of ``csms.core.ports.Store`` and ``csms.security.records.SecurityStore``."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.engine = db.engine
        self.security = security = SqlSecurity(db)
        self.stations = stations = SqlStations(db, security.credentials)
        self.transactions = transactions = SqlTransactions(db)
        self.alarms = SqlAlarms(db)
        self.station_events = events = SqlStationEvents(db)
        self.audit = audit = SqlAudit(db)
        self.sites = SqlSites(db)  # sites, groups, connector specs; resolves targets
        self.local_lists = SqlLocalLists(db)  # id tag groups, local-list policies and station lists

        self.get_station = stations.get_station
        self.list_stations = stations.list_stations
        self.station_profiles = stations.station_profiles
        self.upsert_station = stations.upsert_station
        self.delete_station = stations.delete_station
        self.get_password_hash = stations.get_password_hash
        self.record_boot = stations.record_boot
        self.save_seen = stations.save_seen
        self.save_connectors = stations.save_connectors
        self.load_connectors = stations.load_connectors
        self.save_variables = stations.save_variables
        self.load_variables = stations.load_variables
        self.get_id_tag = stations.get_id_tag
        self.put_id_tag = stations.put_id_tag
        self.delete_id_tag = stations.delete_id_tag
        self.list_id_tags = stations.list_id_tags

        self.start_transaction = transactions.start_transaction
        self.stop_transaction = transactions.stop_transaction
        self.apply_transaction_event = transactions.apply_transaction_event
        self.get_transaction = transactions.get_transaction
        self.list_transactions = transactions.list_transactions

        self.save_station_events = events.save_station_events
        self.list_station_events = events.list_station_events
        self.prune_station_events = events.prune_station_events
        self.save_signed_meter_values = events.save_signed_meter_values
        self.list_signed_meter_values = events.list_signed_meter_values

        self.save_security_event = security.save_security_event
        self.list_security_events = security.list_security_events
        self.get_credentials = security.get_credentials
        self.set_pending_password = security.set_pending_password
        self.finish_password_rotation = security.finish_password_rotation
        self.save_certificate = security.save_certificate
        self.set_certificate_status = security.set_certificate_status
        self.list_certificates = security.list_certificates

        self.record_audit = audit.record_audit
        self.list_audit = audit.list_audit

    @classmethod
    async def open(cls, db: str, *, synchronous: str = "FULL") -> SqlStore:
        """Connect, apply migrations, and return a ready store."""
        return cls(await Database.open(db, synchronous=synchronous))

    async def close(self) -> None:
        await self.transactions.close()
        await self.db.close()
