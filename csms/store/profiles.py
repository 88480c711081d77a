"""Operator charging profiles (``csms.profiles.rules``) and the outcomes of operator commands."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from csms.profiles.rules import Answer, StoredProfile, profile_fields, profile_of_fields
from csms.profiles.rules import Profile as ChargingProfile
from csms.store import schema as t
from csms.store.engine import Database


@dataclass(frozen=True, slots=True)
class CommandOutcome:
    """A command sent to a station for the operator and what came back."""

    id: int
    station_id: str
    action: str
    request: dict[str, Any]
    status: str
    result: dict[str, Any]
    at: datetime


def _stored(row: sa.Row[Any]) -> StoredProfile:
    m = row._mapping
    return StoredProfile(m["station_id"], profile_of_fields(json.loads(m["profile"])),
                         Answer(m["status"], m["detail"]), m["set_at"])


def _outcome(row: sa.Row[Any]) -> CommandOutcome:
    m = row._mapping
    return CommandOutcome(m["id"], m["station_id"], m["action"], json.loads(m["request"]), m["status"],
                          json.loads(m["result"]), m["at"])


class SqlProfiles:
    """The ``operator_profiles`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def put_profile(
        self, station_id: str, profile: ChargingProfile, answer: Answer, at: datetime
    ) -> None:
        """Keep ``profile`` and the station's answer, replacing the station's profile of that id."""
        p = t.operator_profiles
        async with self._db.write() as conn:
            await conn.execute(p.delete().where(p.c.station_id == station_id,
                                                p.c.profile_id == profile.profile_id))
            await conn.execute(p.insert().values(
                station_id=station_id, profile_id=profile.profile_id, evse_id=profile.evse_id,
                purpose=profile.purpose.value, stack_level=profile.stack_level,
                profile=json.dumps(profile_fields(profile)), status=answer.status, detail=answer.detail,
                set_at=at,
            ))

    async def get_profile(self, station_id: str, profile_id: int) -> StoredProfile | None:
        p = t.operator_profiles
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(p).where(p.c.station_id == station_id, p.c.profile_id == profile_id))).first()
        return None if row is None else _stored(row)

    async def list_profiles(
        self, station_id: str, *, limit: int = 100, after_id: int | None = None
    ) -> list[StoredProfile]:
        """The station's profiles by id, ``limit`` of them after ``after_id``."""
        p = t.operator_profiles
        q = sa.select(p).where(p.c.station_id == station_id)
        if after_id is not None:
            q = q.where(p.c.profile_id > after_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q.order_by(p.c.profile_id).limit(limit))).all()
        return [_stored(r) for r in rows]

    async def delete_profile(self, station_id: str, profile_id: int) -> bool:
        p = t.operator_profiles
        async with self._db.write() as conn:
            res = await conn.execute(p.delete().where(p.c.station_id == station_id,
                                                      p.c.profile_id == profile_id))
        return bool(res.rowcount)



class SqlOperatorCommands:
    """The ``operator_commands`` table."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def record_command(
        self, station_id: str, action: str, request: dict[str, Any], status: str, result: dict[str, Any],
        at: datetime,
    ) -> int:
        """Keep one command's outcome; returns its id."""
        async with self._db.write() as conn:
            res = await conn.execute(t.operator_commands.insert().values(
                station_id=station_id, action=action, request=json.dumps(request), status=status,
                result=json.dumps(result), at=at,
            ))
            key = res.inserted_primary_key
        assert key is not None
        return int(key[0])

    async def list_commands(
        self, station_id: str, *, limit: int = 100, before_id: int | None = None
    ) -> list[CommandOutcome]:
        """The station's command outcomes, newest first, ``limit`` of them before ``before_id``."""
        c = t.operator_commands
        q = sa.select(c).where(c.c.station_id == station_id)
        if before_id is not None:
            q = q.where(c.c.id < before_id)
        async with self._db.read() as conn:
            rows = (await conn.execute(q.order_by(c.c.id.desc()).limit(limit))).all()
        return [_outcome(r) for r in rows]
