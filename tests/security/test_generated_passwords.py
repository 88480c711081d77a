"""Passwords the CSMS generates are stored with a fast salted SHA-256 (``sha256$``), chosen ones
keep scrypt; both verify with the same byte rules, and anything else fails closed."""

from __future__ import annotations

import asyncio
import base64
import secrets
from typing import Any

import httpx
import pytest

from csms.app import CsmsApp
from csms.security import passwords
from csms.security.lifecycle import new_password
from csms.security.station_auth import PasswordChecker
from ocppj.versions import OcppVersion
from tests.security.conftest import MakeCsms
from tests.security.peers import V16, VERSIONS, connect, heartbeat_ok, refusal
from tests.security.test_password_rotation import NEW, OLD, _rotate, _setup, station

V16_KEY = "00112233445566778899aabbccddeeff00112233"  # 40 hex digits: 20 bytes


# --- the stored schemes --------------------------------------------------------------------
@pytest.mark.parametrize("hasher", [passwords.hash_password, passwords.hash_generated_password])
@pytest.mark.parametrize(("stored", "sent", "ok"), [
    (V16_KEY, V16_KEY, True),
    (V16_KEY, V16_KEY.upper(), True),
    (V16_KEY, bytes.fromhex(V16_KEY), True),
    (V16_KEY, V16_KEY[:-1] + "4", False),
    ("Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", True),  # 2.0.1, 32 chars
    ("Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", False),
])
def test_both_schemes_round_trip_with_the_same_byte_rules(
    hasher: Any, stored: str, sent: str | bytes, ok: bool
) -> None:
    assert passwords.verify(sent, hasher(stored)) is ok


@pytest.mark.parametrize("version", VERSIONS)
def test_generated_passwords_verify_under_the_fast_scheme(version: str) -> None:
    secret = new_password(OcppVersion(version))
    stored = passwords.hash_generated_password(secret)
    scheme, salt_b64, digest_b64 = stored.split("$")
    assert scheme == "sha256" and secret not in stored and secret.lower() not in stored.lower()
    assert len(base64.b64decode(salt_b64)) == 16 and len(base64.b64decode(digest_b64)) == 32
    assert passwords.verify(secret, stored)
    assert stored != passwords.hash_generated_password(secret)  # salted


def test_tampered_or_unknown_hashes_fail_closed() -> None:
    secret = secrets.token_hex(20)
    stored = passwords.hash_generated_password(secret)
    _, salt_b64, digest_b64 = stored.split("$")
    salt, digest = base64.b64decode(salt_b64), base64.b64decode(digest_b64)
    flipped = base64.b64encode(bytes([digest[0] ^ 1]) + digest[1:]).decode()
    other_salt = base64.b64encode(bytes([salt[0] ^ 1]) + salt[1:]).decode()
    bad = [
        f"sha256${salt_b64}${flipped}",  # digest changed
        f"sha256${other_salt}${digest_b64}",  # salt changed
        f"sha256${salt_b64}${base64.b64encode(digest[:16]).decode()}",  # truncated digest
        f"sha256$${digest_b64}",  # no salt
        f"sha256${base64.b64encode(b'short').decode()}${digest_b64}",  # short salt
        f"sha256${salt_b64}${digest_b64}$extra",
        f"sha256${salt_b64}",
        f"sha256${salt_b64}$!!{digest_b64}",  # not base64
        f"SHA256${salt_b64}${digest_b64}",
        f"sha512${salt_b64}${digest_b64}",
        f"plain${secret}",
        secret,
        "",
        "md5$whatever",
    ]
    for stored_bad in bad:
        assert not passwords.verify(secret, stored_bad), stored_bad
    assert passwords.verify(secret, stored)  # the untouched hash still matches


async def _fresh_check(form: bytes, hashes: list[str]) -> str | None:
    checker = PasswordChecker()  # empty cache, as after a restart
    try:
        return await checker.matching_hash("CP", form, hashes)
    finally:
        checker.close()


async def test_a_fresh_checker_accepts_a_fast_hash_as_after_a_restart() -> None:
    secret = secrets.token_hex(20)
    stored = passwords.hash_generated_password(secret)
    scrypt_old = passwords.hash_password(OLD)  # mid-rotation: old scrypt + pending sha256
    for form in (secret.encode(), secret.upper().encode(), bytes.fromhex(secret)):
        assert await _fresh_check(form, [stored]) == stored
        assert await _fresh_check(form, [scrypt_old, stored]) == stored
    assert await _fresh_check(b"0" * 40, [stored]) is None
    assert await _fresh_check(OLD.encode(), [scrypt_old, stored]) == scrypt_old


# --- where each scheme is used ---------------------------------------------------------------
async def _hashes(app: CsmsApp, station_id: str) -> tuple[str | None, str | None]:
    assert app.store is not None
    creds = await app.store.get_credentials(station_id)
    assert creds is not None
    return creds.password_hash, creds.pending_password_hash


@pytest.mark.parametrize("version", VERSIONS)
async def test_generated_rotation_stores_a_fast_hash_and_the_station_logs_in(
    make_csms: MakeCsms, version: str
) -> None:
    app = await _setup(make_csms)
    received: list[tuple[str, dict[str, Any]]] = []
    async with station(app, version, "Accepted", received):
        r = await _rotate(app, {})
    assert r.json() == {"status": "Accepted", "switched": True}
    current, pending = await _hashes(app, "ROT")
    assert current is not None and current.startswith("sha256$") and pending is None
    if version == V16:
        sent = received[0][1]["value"]
        forms: list[str | bytes] = [sent, sent.upper(), bytes.fromhex(sent)]
    else:
        sent = received[0][1]["setVariableData"][0]["attributeValue"]
        forms = [sent]
    assert sent not in current
    for form in forms:  # real WebSocket upgrades with HTTP Basic auth
        async with connect(app.ocpp_url, "ROT", version, password=form) as ws:
            assert await heartbeat_ok(ws)
    assert await refusal(app.ocpp_url, "ROT", version, password=OLD) == 401


@pytest.mark.parametrize("version", VERSIONS)
async def test_unanswered_generated_rotation_keeps_a_fast_pending_hash(
    make_csms: MakeCsms, version: str
) -> None:
    app = await _setup(make_csms, call_timeout_s=0.5)
    received: list[tuple[str, dict[str, Any]]] = []
    async with station(app, version, None, received):
        r = await _rotate(app, {})
    assert r.json() == {"status": "NoAnswer", "switched": False}
    current, pending = await _hashes(app, "ROT")
    assert current is not None and current.startswith("scrypt$")
    assert pending is not None and pending.startswith("sha256$")
    payload = received[0][1]
    sent = payload["value"] if version == V16 else payload["setVariableData"][0]["attributeValue"]
    async with connect(app.ocpp_url, "ROT", version, password=sent) as ws:  # promotes the pending hash
        assert await heartbeat_ok(ws)
    current, pending = await _hashes(app, "ROT")
    assert current is not None and current.startswith("sha256$") and pending is None


@pytest.mark.parametrize("version", VERSIONS)
async def test_operator_chosen_passwords_keep_scrypt(make_csms: MakeCsms, version: str) -> None:
    app = await _setup(make_csms)
    async with station(app, version, "Accepted", []):
        r = await _rotate(app, {"password": NEW})
    assert r.json() == {"status": "Accepted", "switched": True}
    current, _ = await _hashes(app, "ROT")
    assert current is not None and current.startswith("scrypt$")

    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        put = await api.put("/api/chargers/OP1", json={"security_profile": 1, "password": OLD})
    assert put.status_code == 200
    current, _ = await _hashes(app, "OP1")
    assert current is not None and current.startswith("scrypt$")
    async with connect(app.ocpp_url, "OP1", version, password=OLD) as ws:
        assert await heartbeat_ok(ws)


async def test_a_check_abandoned_by_its_handshake_still_counts_and_identical_checks_are_shared() -> None:
    """Storm retries must not pay scrypt again: the first check finishes and is cached even if
    its waiter was cancelled (handshake timeout), and concurrent identical checks run once."""
    stored = passwords.hash_password(V16_KEY)  # scrypt: tens of milliseconds per check
    checker = PasswordChecker()
    try:
        first = asyncio.create_task(checker.matching_hash("CP1", V16_KEY.encode(), [stored]))
        await asyncio.sleep(0.001)
        first.cancel()  # the station's handshake timed out
        same = [checker.matching_hash("CP1", V16_KEY.encode(), [stored]) for _ in range(5)]
        assert await asyncio.gather(*same) == [stored] * 5  # shared with the abandoned check
        assert checker.hashes_computed == 1
        assert await checker.matching_hash("CP1", V16_KEY.encode(), [stored]) == stored  # cached
        assert await checker.matching_hash("CP1", b"wrong-password-0123", [stored]) is None
        assert checker.hashes_computed == 2
    finally:
        checker.close()
