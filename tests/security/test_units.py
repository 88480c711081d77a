"""Sans-I/O pieces of the security package: limits, password forms, decisions, guards."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from csms.security import passwords
from csms.security.lifecycle import REDACTED, check_password, new_password, redact, sets_password
from csms.security.limits import Gauge, TokenBucket, WindowCounter
from csms.security.records import StationCredentials
from csms.security.station_auth import basic_credentials, needs_password, transport_refusal
from csms.security.tls import PeerCertificate
from ocppj import schemas
from ocppj.framing import ErrorKind
from ocppj.versions import OcppVersion

V16, V201 = OcppVersion.V16, OcppVersion.V201


def test_token_bucket_allows_the_burst_then_the_rate() -> None:
    bucket = TokenBucket(rate=2, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.take(0.5) and not bucket.take(0.5)
    assert TokenBucket(rate=0, burst=1).take(0.0)


def test_window_counter_resets_after_the_window_and_bounds_its_keys() -> None:
    counter = WindowCounter(limit=2, window_s=60, max_keys=2)
    counter.add("a", 0)
    assert not counter.exceeded("a", 1)
    counter.add("a", 1)
    assert counter.exceeded("a", 59) and not counter.exceeded("a", 61)
    counter.add("b", 2)
    counter.add("c", 3)
    assert not counter.exceeded("a", 4)  # evicted as the oldest key


def test_gauge_caps_per_key_and_in_total() -> None:
    gauge = Gauge(per_key=2, total=3)
    assert [gauge.acquire("ip1"), gauge.acquire("ip1"), gauge.acquire("ip1")] == [None, None, "per_key"]
    assert gauge.acquire("ip2") is None and gauge.acquire("ip3") == "total"
    gauge.release("ip1")
    assert gauge.acquire("ip3") is None and gauge.total == 3
    gauge.release("nobody")
    assert gauge.total == 3


@pytest.mark.parametrize(("stored", "sent", "ok"), [
    ("00112233445566778899aabbccddeeff", "00112233445566778899AABBCCDDEEFF", True),
    ("00112233445566778899aabbccddeeff", bytes.fromhex("00112233445566778899aabbccddeeff"), True),
    ("plain-password-2.0.1", "plain-password-2.0.1", True),
    ("plain-password-2.0.1", "plain-password-2.0.2", False),
    ("00112233445566778899aabbccddeeff", "00112233445566778899aabbccddeef0", False),
])
def test_passwords_are_compared_as_the_bytes_they_stand_for(stored: str, sent: str | bytes, ok: bool) -> None:
    assert passwords.verify(sent, passwords.hash_password(stored)) is ok


def test_hashes_are_salted_and_never_contain_the_password() -> None:
    a, b = passwords.hash_password("same-password-123"), passwords.hash_password("same-password-123")
    assert a != b and "same-password" not in a and a.startswith("scrypt$")
    assert not passwords.verify("anything-at-all-x", "md5$whatever")


def test_basic_credentials_are_bytes_and_malformed_headers_are_none() -> None:
    raw = base64.b64encode(b"CP1:\xff\xfe:x").decode()
    assert basic_credentials(f"Basic {raw}") == (b"CP1", b"\xff\xfe:x")
    for bad in (None, "", "Bearer abc", "Basic !!!", "Basic " + base64.b64encode(b"nocolon").decode()):
        assert basic_credentials(bad) is None


def test_transport_refusal_enforces_the_profile() -> None:
    p2, p3 = StationCredentials("CP", 2, "h"), StationCredentials("CP", 3)
    mine, other = PeerCertificate(("CP",), (), 1), PeerCertificate(("XX",), (), 2)
    two_cns = PeerCertificate(("CP", "XX"), (), 3)
    assert transport_refusal(p2, tls=False, peer=None) is not None
    assert transport_refusal(p2, tls=True, peer=None) is None
    assert transport_refusal(p3, tls=True, peer=mine) is None
    for peer in (None, other, two_cns):
        refusal = transport_refusal(p3, tls=True, peer=peer)
        assert refusal is not None and refusal.status == 403
    assert transport_refusal(p3, tls=True, peer=mine, organization="ACME") is not None
    assert needs_password(StationCredentials("CP", 1)) and not needs_password(p3)
    assert needs_password(StationCredentials("CP", 0, "h"))
    assert not needs_password(StationCredentials("CP", 0))


def _too_wide(version: OcppVersion, action: str, payload: dict[str, Any]) -> str | None:
    """The schema's verdict on ``payload`` when it is an integer out of range, else None."""
    violation = schemas.validate(version, action, payload, response=False)
    assert violation is None or violation.kind is ErrorKind.TYPE, violation
    return None if violation is None else violation.message


def test_integer_bounds_follow_the_schema() -> None:
    status = {"connectorId": 2**31, "errorCode": "NoError", "status": "Available"}
    assert _too_wide(V16, "StatusNotification", status) is not None
    assert _too_wide(V16, "StatusNotification", {**status, "connectorId": 1e20}) is not None
    assert _too_wide(V16, "StatusNotification", {**status, "connectorId": 2**31 - 1}) is None
    start = {"connectorId": 1, "idTag": "T", "meterStart": 3 * 10**9, "timestamp": "2026-01-01T00:00:00Z"}
    assert _too_wide(V16, "StartTransaction", start) is None  # a 3 GWh register is real
    big_register = {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z",
                                                 "sampledValue": [{"value": 1.3e10}]}]}
    assert _too_wide(V201, "MeterValues", big_register) is None  # a number, not an integer
    bad_multiplier = {"evseId": 1, "meterValue": [{"timestamp": "2026-01-01T00:00:00Z", "sampledValue": [
        {"value": 1, "unitOfMeasure": {"multiplier": 400}}]}]}
    assert _too_wide(V201, "MeterValues", bad_multiplier) == (
        "integer out of range at /meterValue/0/sampledValue/0/unitOfMeasure/multiplier")


def test_password_payloads_are_recognised_and_redacted() -> None:
    change = {"key": "AuthorizationKey", "value": "00" * 20}
    assert sets_password("ChangeConfiguration", change)
    assert redact("ChangeConfiguration", change) == {"key": "AuthorizationKey", "value": REDACTED}
    assert change["value"] == "00" * 20  # the original is untouched
    other = {"key": "HeartbeatInterval", "value": "60"}
    assert not sets_password("ChangeConfiguration", other) and redact("ChangeConfiguration", other) is other
    sv = {"setVariableData": [
        {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
         "attributeValue": "s"},
        {"component": {"name": "OCPPCommCtrlr"}, "variable": {"name": "HeartbeatInterval"},
         "attributeValue": "9"},
    ]}
    clean = redact("SetVariables", sv)
    assert [i["attributeValue"] for i in clean["setVariableData"]] == [REDACTED, "9"]


def test_generated_passwords_fit_their_version() -> None:
    for version in (V16, V201):
        check_password(version, new_password(version))
    with pytest.raises(ValueError):
        check_password(V16, "x" * 21)
    with pytest.raises(ValueError):
        check_password(V201, "short")


def test_serve_tls_flags_reach_the_settings() -> None:
    from csms.cli import _overrides, build_parser
    from csms.config import load_settings

    args = build_parser().parse_args(["serve", "--tls-cert", "c.pem", "--tls-key", "k.pem",
                                      "--tls-client-ca", "ca.pem", "--tls-port", "9555"])
    tls = load_settings(None, _overrides(args), environ={}).tls
    assert (tls.cert, tls.key, tls.client_ca, tls.port) == ("c.pem", "k.pem", "ca.pem", 9555)
    plain = load_settings(None, _overrides(build_parser().parse_args(["serve"])), environ={}).tls
    assert plain.cert == "" and plain.port == 9443
