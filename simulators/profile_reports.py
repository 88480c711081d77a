"""2.0.1 GetChargingProfiles for the virtual charger: its installed profiles in ReportChargingProfiles.

Profiles are reported per EVSE (0: the station's own), filtered by the request's criteria
(purpose, stack level, profile ids); the charger's profiles all come from the CSMS (source CSO).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from simulators.link import Served
from simulators.model import ChargerOps
from simulators.serving import Handler


def _wanted(criteria: dict[str, Any], payload: dict[str, Any]) -> bool:
    ids = criteria.get("chargingProfileId")
    return ((ids is None or payload.get("id") in ids)
            and criteria.get("chargingProfilePurpose") in (None, payload.get("chargingProfilePurpose"))
            and criteria.get("stackLevel") in (None, payload.get("stackLevel")))


def _get(c: ChargerOps, p: dict[str, Any]) -> Served:
    criteria = p.get("chargingProfile") or {}
    by_evse: dict[int, list[dict[str, Any]]] = {}
    for evse_id, profile in c.profiles.profiles(p.get("evseId")):
        payload = dict(profile.payload)
        if "id" in payload and _wanted(criteria, payload):
            by_evse.setdefault(evse_id, []).append(payload)
    if not by_evse:
        return Served({"status": "NoProfiles"})

    def report() -> None:
        evses = sorted(by_evse)
        for n, evse_id in enumerate(evses):
            payload = {"requestId": p["requestId"], "chargingLimitSource": "CSO", "tbc": n < len(evses) - 1,
                       "evseId": evse_id, "chargingProfile": by_evse[evse_id]}
            c.enqueue("ReportChargingProfiles", _const(payload))

    return Served({"status": "Accepted"}, report)


def _const(payload: dict[str, Any]) -> Callable[[], dict[str, Any]]:
    return lambda: payload


HANDLERS: dict[str, Handler] = {"GetChargingProfiles": _get}
