"""OCPP 2.0.1 outbound commands: every payload passes the official schema; answers read as domain results."""

from __future__ import annotations

from typing import Any

import pytest

from csms.core.commands import (
    CertificateKind,
    ChargingLimit,
    CommandKind,
    CommandResult,
    CommandStatus,
    ConfigurationReport,
    ResetKind,
)
from csms.ocpp.outbound import Outbound
from csms.ocpp.v201 import commands as v201
from ocppj import schemas
from ocppj.versions import OcppVersion

FIRMWARE = "https://fw.example/1.bin"
TX_LIMIT = ChargingLimit(amps=13.54, phases=1, tx_id="tx-1", profile_id=9)

KIND_OF_BUILT: list[tuple[CommandKind, Outbound[Any]]] = [
    (CommandKind.REMOTE_START, v201.remote_start("TAG-1", 2, 77)),
    (CommandKind.REMOTE_STOP, v201.remote_stop("tx-1")),
    (CommandKind.RESET, v201.reset(ResetKind.SOFT)),
    (CommandKind.RESET, v201.reset(ResetKind.HARD)),
    (CommandKind.UNLOCK, v201.unlock(1, 2)),
    (CommandKind.CHANGE_AVAILABILITY, v201.change_availability(False, 0)),
    (CommandKind.CHANGE_AVAILABILITY, v201.change_availability(True, 2)),
    (CommandKind.TRIGGER_MESSAGE, v201.trigger_message("MeterValues", 1)),
    (CommandKind.TRIGGER_MESSAGE, v201.trigger_message("Heartbeat", None)),
    (CommandKind.SET_LIMIT, v201.set_limit(1, TX_LIMIT)),
    (CommandKind.SET_LIMIT, v201.set_limit(2, ChargingLimit(watts=7400.0, stack_level=0))),
    (CommandKind.CLEAR_LIMIT, v201.clear_limit(1000)),
    (CommandKind.READ_CONFIGURATION, v201.read_configuration(5)),
    (CommandKind.SET_PASSWORD, v201.set_password("a" * 32)),
    *[(CommandKind.INSTALL_CERTIFICATE, v201.install_certificate(k, "PEM")) for k in CertificateKind],
    (CommandKind.RENEW_CERTIFICATE, v201.renew_certificate()),
    (CommandKind.UPDATE_FIRMWARE, v201.update_firmware(FIRMWARE, "2026-12-07T10:00:00Z", 3)),
    (CommandKind.UPLOAD_LOG, v201.upload_log("ftp://logs.example/", 4)),
]


@pytest.mark.parametrize(("kind", "out"), KIND_OF_BUILT, ids=lambda v: getattr(v, "action", str(v)))
def test_every_built_payload_passes_the_official_schema_under_its_action_name(
    kind: CommandKind, out: Outbound[Any]
) -> None:
    assert out.action == v201.action_name(kind)
    assert schemas.validate(OcppVersion.V201, out.action, out.payload, response=False) is None


def test_every_kind_has_an_action() -> None:
    assert all(v201.action_name(kind) in schemas.actions(OcppVersion.V201) for kind in CommandKind)


def test_remote_start_sends_a_central_token_and_the_remote_start_id() -> None:
    assert v201.remote_start("TAG-1", 2, 77).payload == {
        "idToken": {"idToken": "TAG-1", "type": "Central"}, "evseId": 2, "remoteStartId": 77,
    }
    assert v201.remote_stop("tx-1").payload == {"transactionId": "tx-1"}


def test_reset_kinds_map_to_on_idle_and_immediate() -> None:
    assert v201.reset(ResetKind.SOFT).payload == {"type": "OnIdle"}
    assert v201.reset(ResetKind.HARD).payload == {"type": "Immediate"}


def test_availability_of_the_station_has_no_evse() -> None:
    assert v201.change_availability(False, 0).payload == {"operationalStatus": "Inoperative"}
    assert v201.change_availability(True, 2).payload == {"operationalStatus": "Operative", "evse": {"id": 2}}


def test_tx_limit_is_a_relative_tx_profile_with_one_schedule() -> None:
    out = v201.set_limit(1, TX_LIMIT)
    assert out.payload == {"evseId": 1, "chargingProfile": {
        "id": 9, "stackLevel": 1, "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
        "transactionId": "tx-1",
        "chargingSchedule": [{"id": 9, "chargingRateUnit": "A", "chargingSchedulePeriod": [
            {"startPeriod": 0, "limit": 13.5, "numberPhases": 1},
        ]}],
    }}


def test_limit_without_transaction_is_the_default_profile() -> None:
    profile = v201.set_limit(2, ChargingLimit(watts=7400.0, stack_level=0)).payload["chargingProfile"]
    assert profile["chargingProfilePurpose"] == "TxDefaultProfile" and "transactionId" not in profile
    assert profile["chargingSchedule"][0]["chargingRateUnit"] == "W"


def test_password_is_set_as_the_basic_auth_variable() -> None:
    assert v201.set_password("a" * 32).payload == {"setVariableData": [{
        "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
        "attributeValue": "a" * 32,
    }]}


READS: list[tuple[Outbound[Any], dict[str, Any], object]] = [
    (v201.reset(ResetKind.SOFT), {"status": "Scheduled"}, CommandResult(CommandStatus.SCHEDULED)),
    (v201.unlock(1, 1), {"status": "UnknownConnector", "statusInfo": {"reasonCode": "NoConnector"}},
     CommandResult(CommandStatus.UNKNOWN_CONNECTOR, "NoConnector")),
    (v201.remote_start("T", 1, 1), {"status": "Accepted", "transactionId": "tx-9"},
     CommandResult(CommandStatus.ACCEPTED, "transaction tx-9 already running")),
    (v201.remote_stop("tx-1"),
     {"status": "Rejected", "statusInfo": {"reasonCode": "UnknownTx", "additionalInfo": "gone"}},
     CommandResult(CommandStatus.REJECTED, "UnknownTx: gone")),
    (v201.set_password("a" * 32), {"setVariableResult": [{
        "attributeStatus": "UnknownVariable", "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
    }]}, CommandResult(CommandStatus.UNKNOWN_VARIABLE)),
    (v201.read_configuration(5), {"status": "EmptyResultSet"},
     ConfigurationReport(CommandStatus.EMPTY_RESULT_SET)),
    (v201.update_firmware(FIRMWARE, "2026-12-07T10:00:00Z", 3), {"status": "InvalidCertificate"},
     CommandResult(CommandStatus.INVALID_CERTIFICATE)),
    (v201.upload_log("ftp://logs.example/", 4), {"status": "Accepted", "filename": "log.zip"},
     CommandResult(CommandStatus.ACCEPTED, "log.zip")),
]


@pytest.mark.parametrize(("out", "reply", "expected"), READS)
def test_schema_valid_answers_read_as_domain_results(
    out: Outbound[Any], reply: dict[str, Any], expected: object
) -> None:
    assert schemas.validate(OcppVersion.V201, out.action, reply, response=True) is None
    assert out.read(reply) == expected


def test_a_limit_is_in_amperes_or_watts_never_both_or_neither() -> None:
    with pytest.raises(ValueError):
        ChargingLimit()
    with pytest.raises(ValueError):
        ChargingLimit(amps=6.0, watts=4000.0)
    with pytest.raises(ValueError):
        ChargingLimit(amps=-1.0)
