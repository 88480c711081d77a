"""The CSMS-initiated calls both versions serve alike, and the table that routes them.

Each version module keeps a table of action -> handler and only the handlers whose
payloads differ; this module holds the dispatch, fixed answers, TriggerMessage's common
messages, the charging-profile steps (install, composite schedule, a remote start's
TxProfile, clearing) and progress notifications (log uploads; firmware is ``simulators.firmware``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ocppj.framing import ErrorKind
from simulators.link import Refused, Served
from simulators.model import ChargerOps, EvseState, Tx
from simulators.profiles import (
    ChargingProfile,
    CompositeSchedule,
    ProfileRejected,
    Purpose,
    RateUnit,
    parse_get_composite_schedule,
    parse_profile,
    parse_set_charging_profile,
)

Handler = Callable[[ChargerOps, dict[str, Any]], Served]
ACCEPTED = {"status": "Accepted"}
REJECTED = {"status": "Rejected"}


def serve(handlers: Mapping[str, Handler], c: ChargerOps, action: str, payload: dict[str, Any]) -> Served:
    """Answer ``action`` with its handler; an action without one is NotSupported."""
    handler = handlers.get(action)
    if handler is None:
        raise Refused(ErrorKind.NOT_SUPPORTED, f"{action} is not supported by this charger")
    return handler(c, payload)


def fixed(payload: dict[str, Any]) -> Handler:
    """A handler that always answers (a copy of) ``payload``."""
    def handler(c: ChargerOps, p: dict[str, Any]) -> Served:
        return Served(dict(payload))
    return handler


# --- TriggerMessage -------------------------------------------------------------------------


def trigger_targets(c: ChargerOps, evse_id: int | None) -> list[EvseState] | None:
    """The EVSEs a TriggerMessage is about (every one for None or 0); None for an unknown EVSE."""
    if evse_id is not None and evse_id != 0 and evse_id not in c.evses:
        return None
    return [c.evses[evse_id]] if evse_id else list(c.evses.values())


def trigger_meter(c: ChargerOps, evses: Sequence[EvseState], *, transaction_event: bool) -> Served:
    """Accept, then send the meter values of ``evses`` (see ``ChargerOps.send_meter``)."""
    def send_meter() -> None:
        for evse in evses:
            c.send_meter(evse, transaction_event=transaction_event)
    return Served(dict(ACCEPTED), send_meter)


def trigger(c: ChargerOps, message: str, targets: Sequence[EvseState], idle: tuple[str, ...]) -> Served:
    """The messages both versions trigger alike: boot, heartbeat, status, and the ``idle``
    status notifications (``{"status": "Idle"}``); NotImplemented for any other."""
    if message == "BootNotification":
        return Served(dict(ACCEPTED), c.send_boot)
    if message == "Heartbeat":
        return Served(dict(ACCEPTED), c.send_heartbeat)
    if message == "StatusNotification":
        def send_status() -> None:
            for evse in targets:
                evse.sent_status = None
                c.send_status(evse)
        return Served(dict(ACCEPTED), send_status)
    if message in idle:
        return Served(dict(ACCEPTED), lambda: c.enqueue(message, lambda: {"status": "Idle"}))
    return Served({"status": "NotImplemented"})


# --- charging profiles ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRefused:
    """Why SetChargingProfile was refused: a 2.0.1 ``reasonCode`` and, for an invalid profile, why."""

    reason: str  # InvalidProfile, UnknownEVSE or TxNotFound
    detail: str | None = None


def install_profile(
    c: ChargerOps, p: dict[str, Any], tx_id: Callable[[Tx], str | int | None]
) -> ProfileRefused | None:
    """Install the profile of a SetChargingProfile request; None when installed.

    A TxProfile must name the EVSE's running transaction by ``tx_id`` (the id the version's
    profiles refer to), or no transaction at all.
    """
    try:
        evse_id, profile = parse_set_charging_profile(p)
    except ProfileRejected as exc:
        return ProfileRefused("InvalidProfile", str(exc))
    if evse_id != 0 and evse_id not in c.evses:
        return ProfileRefused("UnknownEVSE")
    if profile.purpose is Purpose.TX:
        tx = c.evses[evse_id].tx if evse_id in c.evses else None
        if tx is None or profile.transaction_id not in (None, str(tx_id(tx))):
            return ProfileRefused("TxNotFound")
    try:
        c.set_profile(evse_id, profile)
    except ProfileRejected as exc:
        return ProfileRefused("InvalidProfile", str(exc))
    return None


def composite(c: ChargerOps, p: dict[str, Any]) -> tuple[int, CompositeSchedule] | None:
    """``(evse id, schedule)`` for a GetCompositeSchedule request; None for an unknown EVSE."""
    evse_id, duration_s, unit = parse_get_composite_schedule(p)
    if evse_id != 0 and evse_id not in c.evses:
        return None
    return evse_id, c.composite(evse_id, duration_s, unit or RateUnit.A)


def start_profile(p: dict[str, Any]) -> ChargingProfile | None:
    """The TxProfile a remote start carries (None: none); raises ProfileRejected if it is unusable."""
    if "chargingProfile" not in p:
        return None
    profile = parse_profile(p["chargingProfile"])
    if profile.purpose is not Purpose.TX:
        raise ProfileRejected("the profile of a remote start must be a TxProfile")
    return profile


def clear_profile(c: ChargerOps, p: dict[str, Any]) -> Served:
    """ClearChargingProfile, the same in both versions: Accepted when anything matched."""
    try:
        cleared = c.clear_profiles(p)
    except ProfileRejected:
        return Served({"status": "Unknown"})
    return Served({"status": "Accepted" if cleared else "Unknown"})


# --- progress notifications -------------------------------------------------------------------


def report_progress(
    c: ChargerOps, action: str, statuses: tuple[str, ...], extra: dict[str, Any] | None = None,
    *, step_s: float = 1.0,
) -> None:
    """Queue ``action`` once per status, ``step_s`` apart (log upload progress)."""
    for i, status in enumerate(statuses):
        payload = {"status": status, **(extra or {})}
        c.after(step_s * (i + 1), _queue(c, action, payload))


def _queue(c: ChargerOps, action: str, payload: dict[str, Any]) -> Callable[[], None]:
    def send() -> None:
        c.enqueue(action, lambda: payload)
    return send
