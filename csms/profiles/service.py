"""Charging profiles by hand: check, send in the station's version, keep the answer."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from csms.core.events import Event
from csms.ocpp.outbound import Outbound
from csms.ocpp.v16 import profiles as v16
from csms.ocpp.v201 import profiles as v201
from csms.profiles.calls import RecordedCalls
from csms.profiles.reports import ReportCollector
from csms.profiles.rules import (
    Answer,
    CompositeSchedule,
    Kind,
    Profile,
    RateUnit,
    StoredProfile,
    check_balancer_place,
    check_composite_request,
    check_id,
    check_profile,
    source_of,
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


@dataclass(slots=True)
class ProfilesReport:
    """What GetChargingProfiles brought: the answer and the installed profiles reported."""

    request_id: int
    answer: Answer
    profiles: list[dict[str, Any]] = field(default_factory=list)
    complete: bool = False


def _reported(data: Mapping[str, object]) -> list[dict[str, Any]]:
    """One ReportChargingProfiles' profiles: ``{evse_id, limit_source, source, profile}``."""
    profiles = data.get("chargingProfile")
    if not isinstance(profiles, list):
        return []
    return [
        {"evse_id": data.get("evseId"), "limit_source": data.get("chargingLimitSource"),
         "source": source_of(p["id"]).value if isinstance(p.get("id"), int) else None, "profile": p}
        for p in profiles if isinstance(p, dict)
    ]


class ProfileService:
    """Set, list, clear operator profiles and read composite schedules (raises ``ProfileInvalid``,
    ``ControlError``)."""

    def __init__(
        self, calls: RecordedCalls, store: SqlProfiles, *, first_request_id: int | None = None,
        balanced: Callable[[str, int], bool] = lambda _station, _evse: False,
    ) -> None:
        self.calls = calls
        self.store = store
        self.balanced = balanced  # (station, EVSE): the load balancer drives it (0: any of the station's)
        start = first_request_id if first_request_id is not None else int(time.time()) % 1_000_000_000
        self._request_ids = itertools.count(max(1, start))
        self.reports = ReportCollector("ReportChargingProfiles", _reported)

    def on_event(self, event: Event) -> None:
        """Feed the kept station events (ReportChargingProfiles) to pending requests."""
        self.reports.on_event(event)

    async def set(self, station_id: str, profile: Profile) -> StoredProfile:
        """Check ``profile`` for the station's version, send it, keep it with the answer.

        An Absolute profile without a start starts now (OCPP wants one)."""
        version = self.calls.version(station_id)
        if profile.kind is Kind.ABSOLUTE and profile.start_schedule is None:
            profile = replace(profile, start_schedule=self.calls.clock.now().replace(microsecond=0))
        check_profile(profile, version)
        check_balancer_place(profile, self.balanced(station_id, profile.evse_id))
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

    async def reported(self, station_id: str, *, evse_id: int | None, wait_s: float) -> ProfilesReport:
        """The profiles a 2.0.1 station says it has installed (GetChargingProfiles), every source's."""
        self.calls.version(station_id, need=OcppVersion.V201, what="charging-profile reports")
        request_id = next(self._request_ids)
        with self.reports.expect(station_id, request_id) as collected:
            answer = await self.calls.send(station_id, v201.get_charging_profiles(request_id, evse_id))
            if answer.status != "Accepted":  # NoProfiles
                return ProfilesReport(request_id, answer, complete=True)
            complete = await collected.wait(wait_s)
            return ProfilesReport(request_id, answer, list(collected.items), complete)
