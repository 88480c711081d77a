"""Charging profiles by hand: check, send in the station's version, keep the answer."""

from __future__ import annotations

from dataclasses import replace
from typing import Protocol

from csms.ocpp.outbound import Outbound
from csms.ocpp.v16 import profiles as v16
from csms.ocpp.v201 import profiles as v201
from csms.profiles.calls import RecordedCalls
from csms.profiles.rules import (
    Answer,
    CompositeSchedule,
    Kind,
    Profile,
    RateUnit,
    StoredProfile,
    check_composite_request,
    check_id,
    check_profile,
)
from csms.store.profiles import SqlProfiles
from ocppj.versions import OcppVersion


class ProfileCodec(Protocol):
    """One version's payloads (``csms.ocpp.v16.profiles``, ``csms.ocpp.v201.profiles``)."""

    def set_profile(self, profile: Profile) -> Outbound[Answer]: ...
    def clear_profile(self, profile_id: int) -> Outbound[Answer]: ...
    def composite_schedule(
        self, evse_id: int, duration_s: int, unit: RateUnit | None
    ) -> Outbound[CompositeSchedule]: ...


CODECS: dict[OcppVersion, ProfileCodec] = {OcppVersion.V16: v16, OcppVersion.V201: v201}

GONE = frozenset({"Accepted", "Unknown"})  # ClearChargingProfile answers after which the station has none


class ProfileService:
    """Set, list, clear operator profiles and read composite schedules (raises ``ProfileInvalid``,
    ``ControlError``)."""

    def __init__(self, calls: RecordedCalls, store: SqlProfiles) -> None:
        self.calls = calls
        self.store = store

    async def set(self, station_id: str, profile: Profile) -> StoredProfile:
        """Check ``profile`` for the station's version, send it, keep it with the answer.

        An Absolute profile without a start starts now (OCPP wants one)."""
        version = self.calls.version(station_id)
        if profile.kind is Kind.ABSOLUTE and profile.start_schedule is None:
            profile = replace(profile, start_schedule=self.calls.clock.now().replace(microsecond=0))
        check_profile(profile, version)
        answer = await self.calls.send(station_id, CODECS[version].set_profile(profile))
        at = self.calls.clock.now()
        await self.store.put_profile(station_id, profile, answer, at)
        return StoredProfile(station_id, profile, answer, at)

    async def clear(self, station_id: str, profile_id: int) -> tuple[Answer, bool]:
        """ClearChargingProfile; the kept profile is removed once the station has it no more.
        Returns the answer and whether a kept profile was removed."""
        version = self.calls.version(station_id)
        check_id(profile_id)
        answer = await self.calls.send(station_id, CODECS[version].clear_profile(profile_id))
        removed = answer.status in GONE and await self.store.delete_profile(station_id, profile_id)
        return answer, removed

    async def composite(
        self, station_id: str, evse_id: int, duration_s: int, unit: RateUnit | None
    ) -> CompositeSchedule:
        version = self.calls.version(station_id)
        check_composite_request(evse_id, duration_s)
        out = CODECS[version].composite_schedule(evse_id, duration_s, unit)
        return await self.calls.send(station_id, out)

    async def list_profiles(
        self, station_id: str, *, limit: int, after_id: int | None
    ) -> list[StoredProfile]:
        return await self.store.list_profiles(station_id, limit=limit, after_id=after_id)
