"""The virtual charger's local list: versioned updates, VersionMismatch, limits, offline authorization."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ocppj import schemas
from ocppj.versions import OcppVersion
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.local_list import ListEntry, LocalList, authorize_offline
from simulators.metrics import Recorder
from simulators.model import ChargerSpec

NOW = datetime(2026, 6, 1, tzinfo=UTC)


def charger(version: OcppVersion) -> VirtualCharger:
    return VirtualCharger(ChargerSpec("SIM-LL", version), url="ws://127.0.0.1:1/ocpp", clock=SimClock(),
                          recorder=Recorder())


def send16(c: VirtualCharger, update: str, version: int, items: list[dict[str, Any]]) -> str:
    payload = {"listVersion": version, "updateType": update, "localAuthorizationList": items}
    assert schemas.validate(OcppVersion.V16, "SendLocalList", payload, response=False) is None
    answer = c.dialect.serve(c, "SendLocalList", payload).payload
    assert schemas.validate(OcppVersion.V16, "SendLocalList", answer, response=True) is None
    return str(answer["status"])


def test_full_and_differential_updates_move_the_version_and_a_stale_base_is_a_mismatch() -> None:
    c = charger(OcppVersion.V16)
    assert c.dialect.serve(c, "GetLocalListVersion", {}).payload == {"listVersion": 0}
    accepted = {"status": "Accepted"}
    full = [{"idTag": "A", "idTagInfo": accepted}, {"idTag": "B", "idTagInfo": accepted}]
    assert send16(c, "Full", 5, full) == "Accepted"
    diff = [{"idTag": "A"}, {"idTag": "C", "idTagInfo": {"status": "Blocked"}}]
    assert send16(c, "Differential", 6, diff) == "Accepted"
    assert {k: e.status for k, e in c.local_list.entries.items()} == {"B": "Accepted", "C": "Blocked"}
    assert send16(c, "Differential", 6, [{"idTag": "D", "idTagInfo": accepted}]) == "VersionMismatch"
    assert c.dialect.serve(c, "GetLocalListVersion", {}).payload == {"listVersion": 6}
    c.settings.extra["SendLocalListMaxLength"] = "1"
    assert send16(c, "Differential", 7, [{"idTag": "D", "idTagInfo": accepted}, {"idTag": "E"}]) == "Failed"
    c.settings.extra["LocalAuthListEnabled"] = "false"
    assert send16(c, "Full", 8, []) == "NotSupported"
    assert c.dialect.serve(c, "GetLocalListVersion", {}).payload == {"listVersion": -1}


def test_v201_serves_the_list_and_reports_its_variables() -> None:
    c = charger(OcppVersion.V201)
    payload = {"versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
        {"idToken": {"idToken": "A", "type": "ISO14443"},
         "idTokenInfo": {"status": "Accepted", "groupIdToken": {"idToken": "G", "type": "Central"}}}]}
    assert c.dialect.serve(c, "SendLocalList", payload).payload == {"status": "Accepted"}
    assert c.local_list.entries == {"A": ListEntry("Accepted", None, "G")}
    assert c.dialect.serve(c, "GetLocalListVersion", {}).payload == {"versionNumber": 3}
    ask = {"getVariableData": [{"component": {"name": "LocalAuthListCtrlr"}, "variable": {"name": n}}
                               for n in ("ItemsPerMessage", "Entries")]}
    results = c.dialect.serve(c, "GetVariables", ask).payload["getVariableResult"]
    assert [r["attributeValue"] for r in results] == ["250", "1"]


def test_offline_authorization_follows_the_list_and_the_configuration() -> None:
    c = charger(OcppVersion.V16)
    c.local_list = LocalList(1, {
        "OK": ListEntry("Accepted"), "OLD": ListEntry("Accepted", NOW - timedelta(days=1)),
        "NO": ListEntry("Blocked"),
    })
    c.settings.extra["AllowOfflineTxForUnknownId"] = "false"
    decisions = [authorize_offline(c, t, NOW) for t in ("OK", "OLD", "NO", "UNLISTED")]
    assert decisions == [True, False, False, False]
    c.settings.extra["AllowOfflineTxForUnknownId"] = "true"
    assert authorize_offline(c, "UNLISTED", NOW) and not authorize_offline(c, "NO", NOW)
    c.settings.local_authorize_offline = False  # listed tags are not authorized from the list
    c.settings.extra["AllowOfflineTxForUnknownId"] = "false"
    assert not authorize_offline(c, "OK", NOW)
