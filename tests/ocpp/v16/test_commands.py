"""OCPP 1.6 outbound commands: every payload passes the official schema; answers read as domain results."""

from __future__ import annotations

from typing import Any

import pytest

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    CommandStatus,
    ConfigurationKey,
    ConfigurationReport,
    ResetKind,
)
from csms.errors import ResponseInvalid
from csms.ocpp.outbound import Outbound
from csms.ocpp.v16 import commands as v16
from csms.security import passwords
from ocppj import schemas
from ocppj.versions import OcppVersion

FIRMWARE = "https://fw.example/1.bin"

KIND_OF_BUILT: list[tuple[CommandKind, Outbound[Any]]] = [
    (CommandKind.REMOTE_START, v16.remote_start("TAG-1", 2, 77)),
    (CommandKind.REMOTE_STOP, v16.remote_stop("42")),
    (CommandKind.RESET, v16.reset(ResetKind.SOFT)),
    (CommandKind.RESET, v16.reset(ResetKind.HARD)),
    (CommandKind.UNLOCK, v16.unlock(1, 1)),
    (CommandKind.CHANGE_AVAILABILITY, v16.change_availability(False, 0)),
    (CommandKind.TRIGGER_MESSAGE, v16.trigger_message("MeterValues", 1)),
    (CommandKind.TRIGGER_MESSAGE, v16.trigger_message("Heartbeat", None)),
    (CommandKind.SET_LIMIT, v16.set_limit(1, ChargingLimit(amps=13.54, phases=3, tx_id="7", profile_id=9))),
    (CommandKind.SET_LIMIT, v16.set_limit(2, ChargingLimit(watts=7400.0, stack_level=0))),
    (CommandKind.CLEAR_LIMIT, v16.clear_limit(1000)),
    (CommandKind.READ_CONFIGURATION, v16.read_configuration(5)),
    (CommandKind.SET_PASSWORD, v16.set_password("0123456789abcdef")),
    (CommandKind.INSTALL_CERTIFICATE, v16.install_certificate(CertificateKind.CSMS_ROOT, "PEM")),
    (CommandKind.INSTALL_CERTIFICATE, v16.install_certificate(CertificateKind.MANUFACTURER_ROOT, "PEM")),
    (CommandKind.RENEW_CERTIFICATE, v16.renew_certificate()),
    (CommandKind.UPDATE_FIRMWARE, v16.update_firmware(FIRMWARE, "2026-12-07T10:00:00Z", 3)),
    (CommandKind.UPLOAD_LOG, v16.upload_log("ftp://logs.example/", 4)),
]


@pytest.mark.parametrize(("kind", "out"), KIND_OF_BUILT, ids=lambda v: getattr(v, "action", str(v)))
def test_every_built_payload_passes_the_official_schema_under_its_action_name(
    kind: CommandKind, out: Outbound[Any]
) -> None:
    assert out.action == v16.action_name(kind)
    assert schemas.validate(OcppVersion.V16, out.action, out.payload, response=False) is None


def test_every_kind_has_an_action() -> None:
    assert all(v16.action_name(kind) in schemas.actions(OcppVersion.V16) for kind in CommandKind)


def test_remote_start_uses_the_evse_as_connector_and_stop_sends_a_number() -> None:
    assert v16.remote_start("TAG-1", 2, 77).payload == {"idTag": "TAG-1", "connectorId": 2}
    assert v16.remote_stop("42").payload == {"transactionId": 42}


def test_non_numeric_transaction_ids_are_refused_before_sending() -> None:
    with pytest.raises(ValueError, match="number"):
        v16.remote_stop("abc")
    with pytest.raises(ValueError, match="number"):
        v16.set_limit(1, ChargingLimit(amps=6.0, tx_id="tx-1"))


def test_reset_kinds_map_to_soft_and_hard() -> None:
    assert v16.reset(ResetKind.SOFT).payload == {"type": "Soft"}
    assert v16.reset(ResetKind.HARD).payload == {"type": "Hard"}


def test_tx_limit_is_a_relative_tx_profile_rounded_to_a_tenth() -> None:
    out = v16.set_limit(1, ChargingLimit(amps=13.54, phases=3, tx_id="7", profile_id=9))
    assert out.payload == {"connectorId": 1, "csChargingProfiles": {
        "chargingProfileId": 9, "stackLevel": 1, "chargingProfilePurpose": "TxProfile",
        "chargingProfileKind": "Relative", "transactionId": 7,
        "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 13.5, "numberPhases": 3},
        ]},
    }}


def test_limit_without_transaction_is_the_default_profile_in_watts_when_given_watts() -> None:
    profile = v16.set_limit(2, ChargingLimit(watts=7400.0, stack_level=0)).payload["csChargingProfiles"]
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile" and "transactionId" not in profile
    assert profile["chargingSchedule"]["chargingRateUnit"] == "W" and profile["stackLevel"] == 0


def test_password_travels_as_hex_of_its_bytes() -> None:
    out = v16.set_password("0123456789abcdef")
    assert out.payload == {"key": "AuthorizationKey", "value": passwords.canonical("0123456789abcdef").hex()}


@pytest.mark.parametrize("kind", [CertificateKind.V2G_ROOT, CertificateKind.MO_ROOT])
def test_certificate_kinds_1_6_lacks_are_refused(kind: CertificateKind) -> None:
    with pytest.raises(ValueError, match=r"does not exist in ocpp1\.6"):
        v16.install_certificate(kind, "PEM")


READS: list[tuple[Outbound[Any], dict[str, Any], object]] = [
    (v16.reset(ResetKind.HARD), {"status": "Rejected"}, CommandResult(CommandStatus.REJECTED)),
    (v16.unlock(1, 1), {"status": "Unlocked"}, CommandResult(CommandStatus.UNLOCKED)),
    (v16.clear_limit(1000), {"status": "Unknown"}, CommandResult(CommandStatus.UNKNOWN)),
    (v16.set_password("0123456789abcdef"), {"status": "RebootRequired"},
     CommandResult(CommandStatus.REBOOT_REQUIRED)),
    (v16.trigger_message("Heartbeat", None), {"status": "NotImplemented"},
     CommandResult(CommandStatus.NOT_IMPLEMENTED)),
    (v16.install_certificate(CertificateKind.CSMS_ROOT, "PEM"), {"status": "Failed"},
     CommandResult(CommandStatus.FAILED)),
    (v16.update_firmware(FIRMWARE, "2026-12-07T10:00:00Z", 3), {},
     CommandResult(CommandStatus.ACCEPTED)),
    (v16.upload_log("ftp://logs.example/", 4), {"fileName": "diag.zip"},
     CommandResult(CommandStatus.ACCEPTED, "diag.zip")),
    (v16.upload_log("ftp://logs.example/", 4), {},
     CommandResult(CommandStatus.REJECTED, "no diagnostics available")),
    (v16.read_configuration(5), {
        "configurationKey": [{"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                             {"key": "NumberOfConnectors", "readonly": True}],
        "unknownKey": ["Nope"],
    }, ConfigurationReport(CommandStatus.ACCEPTED, (
        ConfigurationKey("HeartbeatInterval", "300", False),
        ConfigurationKey("NumberOfConnectors", None, True),
    ), ("Nope",))),
]


@pytest.mark.parametrize(("out", "reply", "expected"), READS)
def test_schema_valid_answers_read_as_domain_results(
    out: Outbound[Any], reply: dict[str, Any], expected: object
) -> None:
    assert schemas.validate(OcppVersion.V16, out.action, reply, response=True) is None
    assert out.read(reply) == expected


def test_accepted_covers_the_answers_that_mean_done_or_will_do() -> None:
    assert CommandResult(CommandStatus.UNLOCKED).accepted
    assert CommandResult(CommandStatus.REBOOT_REQUIRED).accepted
    assert not CommandResult(CommandStatus.REJECTED).accepted
    assert not CommandResult(CommandStatus.UNKNOWN).accepted


def test_an_unexpected_status_word_is_an_invalid_response() -> None:
    with pytest.raises(ResponseInvalid):
        v16.reset(ResetKind.SOFT).read({"status": "Maybe"})
