"""What goes with a removed station or site: the rows the features keep about it.

A station's own records (reservations, uploads and their timelines, desired-configuration answers,
operator charging profiles and command outcomes, its local list, a pending password rotation, a
tariff assigned to it) are deleted in the transaction that removes the station, so a station
registered again under the same id starts clean. Its history stays: transactions, charge detail
records, station and security events, alarms, certificates issued to it, the audit log, firmware
campaign progress. A removed site takes its tariff assignment with it.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from csms.store import schema as t

STATION_TABLES: tuple[tuple[sa.Table, str], ...] = (
    (t.reservations, "station_id"),
    (t.uploads, "charger_id"),
    (t.desired_config_results, "station_id"),
    (t.operator_profiles, "station_id"),
    (t.operator_commands, "station_id"),
    (t.local_list_states, "station_id"),
    (t.local_list_entries, "station_id"),
    (t.password_rotations, "station_id"),
)
"""Each per-station table of the features, with the column naming the station."""

TARIFF_SCOPE_STATION = "station"  # csms.tariffs.assign.Scope (the store does not import the feature)
TARIFF_SCOPE_SITE = "site"


async def remove_station_records(conn: AsyncConnection, station_id: str) -> list[int]:
    """Delete the features' records of ``station_id`` in the caller's transaction; returns the ids of
    its uploads (their files, if any, are the caller's to delete once this commits)."""
    u = t.uploads.c
    upload_ids = [int(r[0]) for r in (await conn.execute(
        sa.select(u.id).where(u.charger_id == station_id))).all()]
    steps = t.upload_steps
    for i in range(0, len(upload_ids), 500):
        await conn.execute(steps.delete().where(steps.c.upload_id.in_(upload_ids[i:i + 500])))
    for table, column in STATION_TABLES:
        await conn.execute(table.delete().where(table.c[column] == station_id))
    a = t.tariff_assignments.c
    await conn.execute(t.tariff_assignments.delete().where(
        a.scope == TARIFF_SCOPE_STATION, a.target == station_id))
    return upload_ids


async def remove_site_records(conn: AsyncConnection, site_id: str) -> None:
    """Delete the features' records of ``site_id`` (its tariff assignment) in the caller's transaction."""
    a = t.tariff_assignments.c
    await conn.execute(t.tariff_assignments.delete().where(a.scope == TARIFF_SCOPE_SITE, a.target == site_id))
