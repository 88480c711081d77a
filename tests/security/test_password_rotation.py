"""Password rotation against a live station that accepts, rejects or ignores the new password:
the stored password switches only when the station accepts, and nobody is ever locked out."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from csms.app import CsmsApp
from csms.core.events import MessageExchanged
from csms.security.passwords import hash_password
from tests.security.conftest import MakeCsms
from tests.security.peers import V16, V201, VERSIONS, connect, heartbeat_ok, refusal, serve_calls

OLD = "old-pw-0123456789abc"  # 20 bytes: valid for both versions
NEW = "new-pw-9876543210xyz"


def _verdict(version: str, status: str) -> dict[str, Any]:
    if version == V16:
        return {"status": status}
    return {"setVariableResult": [{
        "attributeStatus": status, "component": {"name": "SecurityCtrlr"},
        "variable": {"name": "BasicAuthPassword"},
    }]}


@contextlib.asynccontextmanager
async def station(
    app: CsmsApp, version: str, status: str | None, received: list[tuple[str, dict[str, Any]]]
) -> AsyncIterator[None]:
    """A connected station "ROT" that answers every CSMS CALL with ``status`` (None: silence)."""

    async def answer(action: str, payload: dict[str, Any]) -> dict[str, Any] | None:
        return None if status is None else _verdict(version, status)

    async with connect(app.ocpp_url, "ROT", version, password=OLD) as ws:
        task = asyncio.create_task(serve_calls(ws, answer, received))
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def _rotate(app: CsmsApp, body: dict[str, Any]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=app.api_url, timeout=10) as api:
        return await api.post("/api/chargers/ROT/password", json=body)


async def _setup(make_csms: MakeCsms, **settings: Any) -> CsmsApp:
    app = await make_csms(**settings)
    assert app.store is not None
    await app.store.upsert_station("ROT", security_profile=1, password_hash=hash_password(OLD))
    return app


@pytest.mark.parametrize("version", VERSIONS)
async def test_accepted_rotation_switches_to_the_new_password(make_csms: MakeCsms, version: str) -> None:
    app = await _setup(make_csms)
    received: list[tuple[str, dict[str, Any]]] = []
    async with station(app, version, "Accepted", received):
        r = await _rotate(app, {"password": NEW})
    assert r.status_code == 200 and r.json() == {"status": "Accepted", "switched": True}
    assert NEW not in r.text
    if version == V16:
        assert received == [("ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW.encode().hex()})]
    else:
        assert received[0][0] == "SetVariables"
        assert received[0][1]["setVariableData"][0]["attributeValue"] == NEW
    async with connect(app.ocpp_url, "ROT", version, password=NEW) as ws:
        assert await heartbeat_ok(ws)
    assert await refusal(app.ocpp_url, "ROT", version, password=OLD) == 401


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("status", ["Rejected", "NotSupported"])
async def test_rejected_rotation_keeps_the_old_password(
    make_csms: MakeCsms, version: str, status: str
) -> None:
    if version == V201 and status == "NotSupported":
        status = "UnknownVariable"
    app = await _setup(make_csms)
    async with station(app, version, status, []):
        r = await _rotate(app, {"password": NEW})
    assert r.json() == {"status": status, "switched": False}
    assert await refusal(app.ocpp_url, "ROT", version, password=NEW) == 401
    async with connect(app.ocpp_url, "ROT", version, password=OLD) as ws:
        assert await heartbeat_ok(ws)


@pytest.mark.parametrize("version", VERSIONS)
async def test_unanswered_rotation_accepts_both_until_the_station_uses_the_new_one(
    make_csms: MakeCsms, version: str
) -> None:
    app = await _setup(make_csms, call_timeout_s=0.5)
    async with station(app, version, None, []):
        r = await _rotate(app, {"password": NEW})
    assert r.json() == {"status": "NoAnswer", "switched": False}
    async with connect(app.ocpp_url, "ROT", version, password=OLD) as ws:
        assert await heartbeat_ok(ws)
    async with connect(app.ocpp_url, "ROT", version, password=NEW) as ws:  # promotes the new one
        assert await heartbeat_ok(ws)
    assert await refusal(app.ocpp_url, "ROT", version, password=OLD) == 401


@pytest.mark.parametrize("version", VERSIONS)
async def test_generated_password_reaches_the_station_and_works(make_csms: MakeCsms, version: str) -> None:
    app = await _setup(make_csms)
    received: list[tuple[str, dict[str, Any]]] = []
    async with station(app, version, "Accepted", received):
        r = await _rotate(app, {})
    assert r.json()["switched"] is True
    if version == V16:
        sent = received[0][1]["value"]
        assert len(sent) == 40 and bytes.fromhex(sent)
        forms: list[str | bytes] = [sent, bytes.fromhex(sent)]
    else:
        sent = received[0][1]["setVariableData"][0]["attributeValue"]
        assert len(sent) == 32 and sent.isalnum()
        forms = [sent]
    assert sent not in r.text
    for form in forms:
        async with connect(app.ocpp_url, "ROT", version, password=form) as ws:
            assert await heartbeat_ok(ws)


async def test_rotation_of_a_disconnected_station_or_a_bad_password_is_refused(make_csms: MakeCsms) -> None:
    app = await _setup(make_csms)
    assert (await _rotate(app, {"password": NEW})).status_code == 404
    async with station(app, V16, "Accepted", []):
        too_long = "x" * 21  # a 1.6 AuthorizationKey is at most 20 bytes
        r = await _rotate(app, {"password": too_long})
    assert r.status_code == 400 and too_long not in r.text


@pytest.mark.parametrize("version", VERSIONS)
async def test_passwords_cannot_be_set_behind_the_csms_back_and_are_redacted_on_the_bus(
    make_csms: MakeCsms, version: str
) -> None:
    app = await _setup(make_csms)
    seen: list[MessageExchanged] = []
    app.bus.subscribe(lambda e: seen.append(e) if isinstance(e, MessageExchanged) else None, MessageExchanged)
    payload: dict[str, Any]
    if version == V16:
        action, payload = "ChangeConfiguration", {"key": "AuthorizationKey", "value": NEW.encode().hex()}
    else:
        action, payload = "SetVariables", {"setVariableData": [{
            "component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"},
            "attributeValue": NEW}]}
    async with station(app, version, "Accepted", []):
        async with httpx.AsyncClient(base_url=app.api_url) as api:
            r = await api.post(f"/api/chargers/ROT/actions/{action}", json=payload)
            assert r.status_code == 400 and "password" in r.text
        await _rotate(app, {"password": NEW})
    outgoing = [e for e in seen if e.direction == "out" and e.action == action]
    assert outgoing, "the rotation call was published"
    assert all(NEW not in repr(e.payload) and NEW.encode().hex() not in repr(e.payload) for e in seen)


async def test_overlapping_rotations_of_one_station_are_refused(make_csms: MakeCsms) -> None:
    app = await _setup(make_csms, call_timeout_s=1)
    async with station(app, V201, None, []):  # silent: the first rotation waits for its timeout
        first = asyncio.create_task(_rotate(app, {"password": NEW}))
        await asyncio.sleep(0.3)
        second = await _rotate(app, {"password": "third-password-0123"})
        assert second.status_code == 409
        assert (await first).json() == {"status": "NoAnswer", "switched": False}
