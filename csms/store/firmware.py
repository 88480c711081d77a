"""Firmware images and campaigns (``csms.firmware.campaign``) in the store."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, time
from typing import Any

import sqlalchemy as sa

from csms.firmware.campaign import (
    Campaign,
    CampaignSpec,
    CampaignState,
    StationRun,
    StationState,
    Window,
)
from csms.store import schema as t
from csms.store.engine import Database


@dataclass(frozen=True, slots=True)
class FirmwareFile:
    file_id: str
    name: str
    size: int
    sha256: str
    created_at: datetime


def spec_to_json(spec: CampaignSpec) -> str:
    return json.dumps({
        "version": spec.version, "location": spec.location, "file_id": spec.file_id,
        "wave_size": spec.wave_size, "success_threshold": spec.success_threshold,
        "max_retries": spec.max_retries,
        "window": None if spec.window is None else [spec.window.start.isoformat(),
                                                     spec.window.end.isoformat()],
        "retrieve_at": None if spec.retrieve_at is None else spec.retrieve_at.isoformat(),
        "signature": spec.signature, "signing_certificate": spec.signing_certificate,
        "station_timeout_s": spec.station_timeout_s,
    })


def spec_from_json(text: str) -> CampaignSpec:
    d = json.loads(text)
    window = d.get("window")
    retrieve = d.get("retrieve_at")
    return CampaignSpec(
        version=d["version"], location=d["location"], file_id=d["file_id"], wave_size=d["wave_size"],
        success_threshold=d["success_threshold"], max_retries=d["max_retries"],
        window=None if window is None else Window(time.fromisoformat(window[0]),
                                                  time.fromisoformat(window[1])),
        retrieve_at=None if retrieve is None else datetime.fromisoformat(retrieve),
        signature=d["signature"], signing_certificate=d["signing_certificate"],
        station_timeout_s=d["station_timeout_s"],
    )


def _file(row: sa.Row[Any]) -> FirmwareFile:
    m = row._mapping
    return FirmwareFile(m["file_id"], m["name"], int(m["size"]), m["sha256"], m["created_at"])


def _run_values(run: StationRun) -> dict[str, Any]:
    return {
        "wave": run.wave, "state": run.state.value, "last_status": (run.last_status or "")[:255] or None,
        "attempts": run.attempts, "request_id": run.request_id, "turn_at": run.turn_at,
        "updated_at": run.updated_at,
    }


class SqlFirmware:
    """The ``firmware_files``, ``firmware_campaigns`` and ``firmware_campaign_stations`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    # --- files -------------------------------------------------------------------------------
    async def add_file(self, f: FirmwareFile) -> None:
        async with self._db.write() as conn:
            await conn.execute(t.firmware_files.insert().values(
                file_id=f.file_id, name=f.name, size=f.size, sha256=f.sha256, created_at=f.created_at))

    async def get_file(self, file_id: str) -> FirmwareFile | None:
        async with self._db.read() as conn:
            row = (await conn.execute(
                sa.select(t.firmware_files).where(t.firmware_files.c.file_id == file_id))).first()
        return None if row is None else _file(row)

    async def list_files(self, *, limit: int, after: str | None = None) -> list[FirmwareFile]:
        """By id, ``limit`` of them after ``after``."""
        q = sa.select(t.firmware_files).order_by(t.firmware_files.c.file_id).limit(limit)
        if after is not None:
            q = q.where(t.firmware_files.c.file_id > after)
        async with self._db.read() as conn:
            return [_file(r) for r in (await conn.execute(q)).all()]

    async def delete_file(self, file_id: str) -> tuple[bool, bool]:
        """(deleted, its content is still used by another file)."""
        async with self._db.write() as conn:
            sha = (await conn.execute(
                sa.select(t.firmware_files.c.sha256).where(t.firmware_files.c.file_id == file_id))).scalar()
            if sha is None:
                return False, False
            await conn.execute(t.firmware_files.delete().where(t.firmware_files.c.file_id == file_id))
            others = (await conn.execute(
                sa.select(sa.func.count()).where(t.firmware_files.c.sha256 == sha))).scalar_one()
        return True, bool(others)

    async def file_in_active_campaign(self, file_id: str) -> int | None:
        """The id of a running or paused campaign using ``file_id``, if any."""
        c = t.firmware_campaigns.c
        q = sa.select(c.id).where(c.file_id == file_id, c.state.in_(("running", "paused"))).limit(1)
        async with self._db.read() as conn:
            found = (await conn.execute(q)).scalar()
        return None if found is None else int(found)

    # --- campaigns ---------------------------------------------------------------------------
    async def create_campaign(
        self, spec: CampaignSpec, targets: dict[str, object], charger_ids: list[str], now: datetime
    ) -> Campaign:
        async with self._db.write() as conn:
            res = await conn.execute(t.firmware_campaigns.insert().values(
                state=CampaignState.RUNNING.value, spec=spec_to_json(spec), targets=json.dumps(targets),
                file_id=spec.file_id, current_wave=0, created_at=now, updated_at=now))
            key = res.inserted_primary_key
            assert key is not None
            campaign_id = int(key[0])
            campaign = Campaign.new(campaign_id, spec, charger_ids, now)
            await conn.execute(t.firmware_campaign_stations.insert(), [
                {"campaign_id": campaign_id, "charger_id": r.charger_id, **_run_values(r)}
                for r in campaign.stations.values()
            ])
        campaign.take_changes()
        return campaign

    async def save(self, campaign: Campaign) -> None:
        """Persist what changed since the last save."""
        changed, runs = campaign.take_changes()
        if not changed and not runs:
            return
        s = t.firmware_campaign_stations
        try:
            async with self._db.write() as conn:
                if changed:
                    c = t.firmware_campaigns.c
                    await conn.execute(t.firmware_campaigns.update().where(c.id == campaign.id)
                                       .values(state=campaign.state.value, current_wave=campaign.current_wave,
                                               updated_at=campaign.updated_at))
                for run in runs:
                    await conn.execute(s.update().where(s.c.campaign_id == campaign.id,
                                                        s.c.charger_id == run.charger_id)
                                       .values(**_run_values(run)))
        except Exception:  # written again at the next save
            campaign.campaign_changed |= changed
            campaign.changed.update(r.charger_id for r in runs)
            raise

    async def targets_of(self, campaign_id: int) -> dict[str, object]:
        async with self._db.read() as conn:
            text = (await conn.execute(sa.select(t.firmware_campaigns.c.targets)
                                       .where(t.firmware_campaigns.c.id == campaign_id))).scalar()
        return {} if text is None else dict(json.loads(text))

    async def load(self, campaign_id: int) -> Campaign | None:
        found = await self._load(t.firmware_campaigns.c.id == campaign_id)
        return found[0] if found else None

    async def load_active(self) -> list[Campaign]:
        """Running, paused, and aborted campaigns with stations still updating."""
        c = t.firmware_campaigns.c
        return [x for x in await self._load(c.state != CampaignState.DONE.value)
                if x.active or any(r.state is StationState.UPDATING for r in x.stations.values())]

    async def states(self, ids: list[int]) -> dict[int, CampaignState]:
        """The state of every running or paused campaign and of the campaigns ``ids``."""
        c = t.firmware_campaigns.c
        q = sa.select(c.id, c.state).where(sa.or_(c.state.in_(("running", "paused")), c.id.in_(ids)))
        async with self._db.read() as conn:
            return {int(r.id): CampaignState(r.state) for r in (await conn.execute(q)).all()}

    async def list_campaigns(self, *, limit: int, before: int | None = None) -> list[Campaign]:
        """Newest first, without their stations (``stations`` is empty)."""
        c = t.firmware_campaigns.c
        q = sa.select(t.firmware_campaigns).order_by(c.id.desc()).limit(limit)
        if before is not None:
            q = q.where(c.id < before)
        async with self._db.read() as conn:
            rows = (await conn.execute(q)).all()
        return [self._campaign(r) for r in rows]

    async def station_counts(self, campaign_ids: list[int]) -> dict[int, dict[str, int]]:
        s = t.firmware_campaign_stations.c
        q = (sa.select(s.campaign_id, s.state, sa.func.count().label("n"))
             .where(s.campaign_id.in_(campaign_ids)).group_by(s.campaign_id, s.state))
        out: dict[int, dict[str, int]] = {i: {x.value: 0 for x in StationState} for i in campaign_ids}
        async with self._db.read() as conn:
            for r in (await conn.execute(q)).all():
                out[int(r.campaign_id)][r.state] = int(r.n)
        return out

    def _campaign(self, row: sa.Row[Any]) -> Campaign:
        m = row._mapping
        return Campaign(id=int(m["id"]), spec=spec_from_json(m["spec"]), state=CampaignState(m["state"]),
                        created_at=m["created_at"], updated_at=m["updated_at"],
                        current_wave=int(m["current_wave"]))

    async def _load(self, where: sa.ColumnElement[bool]) -> list[Campaign]:
        s = t.firmware_campaign_stations.c
        async with self._db.read() as conn:
            rows = (await conn.execute(sa.select(t.firmware_campaigns).where(where)
                                       .order_by(t.firmware_campaigns.c.id))).all()
            campaigns = {int(r.id): self._campaign(r) for r in rows}
            if campaigns:
                runs = (await conn.execute(sa.select(t.firmware_campaign_stations)
                                           .where(s.campaign_id.in_(list(campaigns)))
                                           .order_by(s.campaign_id, s.wave, s.charger_id))).all()
                for r in runs:
                    campaigns[int(r.campaign_id)].stations[r.charger_id] = StationRun(
                        charger_id=r.charger_id, wave=int(r.wave), state=StationState(r.state),
                        last_status=r.last_status, updated_at=r.updated_at, attempts=int(r.attempts),
                        request_id=None if r.request_id is None else int(r.request_id), turn_at=r.turn_at,
                    )
        return list(campaigns.values())
