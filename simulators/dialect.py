"""What the two version dialects share: the interface, meter rendering and config values.

A dialect turns the charger's neutral events into payloads of its OCPP version and
serves the CSMS-initiated calls of that version through :class:`~simulators.model.ChargerOps`.
Both versions live in modules with the same shape: :mod:`simulators.v16`,
:mod:`simulators.v201`; the calls they serve alike are in :mod:`simulators.serving`.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from ocppj.versions import OcppVersion
from simulators.link import Served
from simulators.model import ChargerOps, EvseState, Sample, Status, StopReason, Tx

Build = Callable[[], dict[str, Any]]
OnAnswer = Callable[[dict[str, Any]], None]


class Dialect(Protocol):
    """One OCPP version's messages for a virtual charger."""

    version: OcppVersion

    def boot(self, c: ChargerOps, reason: str) -> dict[str, Any]: ...

    def boot_result(self, response: dict[str, Any]) -> tuple[str, int]:
        """``(status, interval_s)`` of a BootNotification response."""
        ...

    def status(self, c: ChargerOps, evse: EvseState) -> list[dict[str, Any]]:
        """StatusNotifications for the EVSE's status (one per connector), none if the CSMS has it
        already."""
        ...

    def authorize(self, id_tag: str) -> dict[str, Any]: ...

    def authorized(self, response: dict[str, Any]) -> bool: ...

    def tx_started(
        self, c: ChargerOps, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool
    ) -> tuple[str, Build, OnAnswer | None]:
        """The message that starts ``tx`` and how to read its answer."""
        ...

    def tx_meter(
        self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool, trigger: str
    ) -> tuple[str, Build]:
        """Periodic (or triggered) meter values of a running transaction."""
        ...

    def tx_state(self, evse: EvseState, tx: Tx, sample: Sample, *, offline: bool) -> tuple[str, Build] | None:
        """A charging-state change as a transaction message (2.0.1) or None (1.6)."""
        ...

    def tx_ended(
        self, evse: EvseState, tx: Tx, sample: Sample, reason: StopReason, *, offline: bool
    ) -> tuple[str, Build]: ...

    def meter(self, evse: EvseState, sample: Sample) -> dict[str, Any]:
        """MeterValues outside a transaction (triggered)."""
        ...

    def profile_tx_id(self, tx: Tx) -> str | int | None:
        """The transaction id TxProfiles of this version refer to."""
        ...

    def serve(self, c: ChargerOps, action: str, payload: dict[str, Any]) -> Served: ...


def fmt(value: float, digits: int = 1) -> float:
    """A reading rounded for the wire."""
    return round(value, digits)


METER_CONTEXT = {
    "periodic": "Sample.Periodic",
    "begin": "Transaction.Begin",
    "end": "Transaction.End",
    "trigger": "Trigger",
}


def sampled_values(sample: Sample, context: str, *, strings: bool) -> list[dict[str, Any]]:
    """The sampledValue list of one reading (1.6: values as strings and ``unit``;
    2.0.1: numbers and ``unitOfMeasure``)."""
    rows: list[tuple[str, float, str, str | None, str | None]] = [
        ("Energy.Active.Import.Register", fmt(sample.register_wh), "Wh", None, "Outlet"),
        ("Power.Active.Import", fmt(sample.power_w), "W", None, "Outlet"),
    ]
    for i in range(sample.phases):
        rows.append(("Current.Import", fmt(sample.current_a[i], 2), "A", f"L{i + 1}", "Outlet"))
    rows.append(("Current.Offered", fmt(sample.offered_a), "A", None, "Outlet"))
    rows.append(("Voltage", fmt(sample.voltage_v), "V", "L1-N", "Outlet"))
    if sample.soc_percent is not None:
        rows.append(("SoC", fmt(sample.soc_percent), "Percent", None, "EV"))
    out = []
    for measurand, value, unit, phase, location in rows:
        sv: dict[str, Any] = {"measurand": measurand, "context": context, "location": location}
        if strings:
            sv["value"] = f"{value}"
            sv["unit"] = unit
            sv["format"] = "Raw"
        else:
            sv["value"] = value
            sv["unitOfMeasure"] = {"unit": unit}
        if phase is not None:
            sv["phase"] = phase
        out.append(sv)
    return out


def sign_v16(tx: Tx, register_wh: float, ts: datetime, context: str) -> dict[str, Any] | None:
    """1.6: a signed reading as its own sampled value (``format: SignedData``), when the charger signs."""
    if tx.sign is None:
        return None
    return {"value": tx.sign(register_wh, ts, context), "format": "SignedData", "context": context,
            "measurand": "Energy.Active.Import.Register", "location": "Outlet", "unit": "Wh"}


def sign_v201(tx: Tx, values: list[dict[str, Any]], register_wh: float, ts: datetime, context: str) -> None:
    """2.0.1: the signed reading attached to the energy register's sampled value, when the charger signs."""
    if tx.sign is None:
        return
    from simulators import ocmf  # only when signing: cryptography costs memory in every worker

    data = base64.b64encode(tx.sign(register_wh, ts, context).encode("utf-8")).decode("ascii")
    for sv in values:
        if sv.get("measurand") == "Energy.Active.Import.Register":
            sv["signedMeterValue"] = {"signedMeterData": data, "signingMethod": ocmf.SIGNING_METHOD,
                                      "encodingMethod": "OCMF", "publicKey": ocmf.public_key_b64()}
            return


def in_use(status: Status) -> bool:
    """Whether a status means something is plugged in."""
    return status in (
        Status.PREPARING, Status.CHARGING, Status.SUSPENDED_EV, Status.SUSPENDED_EVSE, Status.FINISHING
    )


def seconds(value: float) -> str:
    """An interval as a configuration value: whole seconds, at least 1."""
    return str(max(1, round(value)))


def parse_positive_int(value: str) -> int | None:
    """An integer configuration value > 0, else None."""
    try:
        number = int(value)
    except ValueError:
        return None
    return number if number > 0 else None
