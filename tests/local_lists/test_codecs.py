"""Each version's SendLocalList / GetLocalListVersion / limits codec: payloads valid against the
official schemas, answers read into domain values."""

from __future__ import annotations

from datetime import UTC, datetime
from types import ModuleType

import pytest

from csms.core.model import AuthStatus
from csms.local_lists.rules import Change, Entry, Limits, Message, SendStatus, UpdateType
from csms.ocpp.v16 import local_list as v16
from csms.ocpp.v201 import local_list as v201
from ocppj import schemas
from ocppj.versions import OcppVersion

EXPIRY = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
MESSAGE = Message(UpdateType.DIFFERENTIAL, 7, (
    Change("A1", Entry("A1", AuthStatus.ACCEPTED, EXPIRY, "PARENT")),
    Change("B1", Entry("B1", AuthStatus.BLOCKED)),
    Change("GONE", None),
))
CODECS = [(OcppVersion.V16, v16), (OcppVersion.V201, v201)]


@pytest.mark.parametrize(("version", "codec"), CODECS)
def test_send_local_list_is_schema_valid_and_reads_the_status(
    version: OcppVersion, codec: ModuleType,
) -> None:
    for message in (MESSAGE, Message(UpdateType.FULL, 1, ())):
        out = codec.send_local_list(message)
        assert out.action == "SendLocalList"
        assert schemas.validate(version, "SendLocalList", out.payload, response=False) is None
    assert codec.send_local_list(MESSAGE).read({"status": "VersionMismatch"}) is SendStatus.VERSION_MISMATCH


def test_v16_entries_carry_id_tag_info_and_removals_carry_none() -> None:
    items = v16.send_local_list(MESSAGE).payload["localAuthorizationList"]
    assert items == [
        {"idTag": "A1", "idTagInfo": {"status": "Accepted", "expiryDate": "2030-01-02T03:04:05.000Z",
                                      "parentIdTag": "PARENT"}},
        {"idTag": "B1", "idTagInfo": {"status": "Blocked"}},
        {"idTag": "GONE"},
    ]
    assert v16.send_local_list(MESSAGE).payload["listVersion"] == 7


def test_v201_entries_carry_id_token_info_and_an_empty_full_list_is_left_out() -> None:
    payload = v201.send_local_list(MESSAGE).payload
    assert payload["versionNumber"] == 7 and payload["updateType"] == "Differential"
    assert payload["localAuthorizationList"][0] == {
        "idToken": {"idToken": "A1", "type": "ISO14443"},
        "idTokenInfo": {"status": "Accepted", "cacheExpiryDateTime": "2030-01-02T03:04:05.000Z",
                        "groupIdToken": {"idToken": "PARENT", "type": "Central"}},
    }
    assert payload["localAuthorizationList"][2] == {"idToken": {"idToken": "GONE", "type": "ISO14443"}}
    assert "localAuthorizationList" not in v201.send_local_list(Message(UpdateType.FULL, 1, ())).payload


def test_versions_and_limits_are_read_from_each_versions_answer() -> None:
    assert v16.get_version().read({"listVersion": 12}) == 12
    assert v201.get_version().read({"versionNumber": 3}) == 3
    out = v16.read_limits(50)
    assert schemas.validate(OcppVersion.V16, "GetConfiguration", out.payload, response=False) is None
    answer = {"configurationKey": [{"key": "SendLocalListMaxLength", "readonly": True, "value": "200"},
                                   {"key": "LocalAuthListMaxLength", "readonly": True, "value": "5000"}]}
    assert out.read(answer) == Limits(200, 5000, 20)
    assert out.read({"unknownKey": ["SendLocalListMaxLength"]}) == Limits(50, None, 20)
    out = v201.read_limits(50)
    assert schemas.validate(OcppVersion.V201, "GetVariables", out.payload, response=False) is None

    def result(name: str, value: str) -> dict[str, object]:
        return {"attributeStatus": "Accepted", "attributeValue": value,
                "component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": name}}
    assert out.read({"getVariableResult": [result("ItemsPerMessage", "300")]}) == Limits(300, None, 36)
    both = {"getVariableResult": [result("ItemsPerMessage", "300"), result("BytesPerMessage", "8000")]}
    assert out.read(both) == Limits(50, None, 36)  # 8,000 bytes hold about 50 entries
