"""Which side sends each action's CALL: the actions a charging station initiates, per version.

The schema files name every action but not who sends its request; the specifications do
(OCPP 1.6 with its security whitepaper, OCPP 2.0.1 part 2). ``DataTransfer`` goes both ways
and is in neither set. Every name here is an action of ``ocppj.schemas.actions(version)``.
"""

from __future__ import annotations

from ocppj.versions import OcppVersion

_V16 = frozenset({
    "Authorize", "BootNotification", "DiagnosticsStatusNotification", "FirmwareStatusNotification",
    "Heartbeat", "LogStatusNotification", "MeterValues", "SecurityEventNotification", "SignCertificate",
    "SignedFirmwareStatusNotification", "StartTransaction", "StatusNotification", "StopTransaction",
})

_V201 = frozenset({
    "Authorize", "BootNotification", "ClearedChargingLimit", "FirmwareStatusNotification",
    "Get15118EVCertificate", "GetCertificateStatus", "Heartbeat", "LogStatusNotification", "MeterValues",
    "NotifyChargingLimit", "NotifyCustomerInformation", "NotifyDisplayMessages", "NotifyEVChargingNeeds",
    "NotifyEVChargingSchedule", "NotifyEvent", "NotifyMonitoringReport", "NotifyReport",
    "PublishFirmwareStatusNotification", "ReportChargingProfiles", "ReservationStatusUpdate",
    "SecurityEventNotification", "SignCertificate", "StatusNotification", "TransactionEvent",
})


def station_initiated(version: OcppVersion) -> frozenset[str]:
    """The actions whose CALL only a charging station sends (the CSMS answers them)."""
    return _V16 if version is OcppVersion.V16 else _V201
