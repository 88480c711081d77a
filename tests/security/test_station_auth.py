"""The security-profile matrix, both protocol versions, over real sockets: who gets in, who
is refused with which HTTP status, and that a refusal never disturbs a live session."""

from __future__ import annotations

import asyncio
import os
import ssl
import warnings
from typing import Any

import pytest
import structlog
import websockets

from csms.app import CsmsApp
from csms.core.model import StationInfo
from csms.security.passwords import hash_password
from ocppj.versions import OcppVersion
from tests.security.conftest import MakeCsms, Pki, tls_settings
from tests.security.peers import VERSIONS, connect, heartbeat_ok, refusal

PASSWORD = "correct-horse-battery"  # 21 characters, not hex
KEY = bytes(range(0x80, 0x94))  # a 20-byte 1.6 AuthorizationKey, not valid UTF-8
KEY_HEX = KEY.hex()


async def register(app: CsmsApp, station_id: str, profile: int, password: str | None = None) -> None:
    assert app.store is not None
    await app.store.upsert_station(
        station_id, security_profile=profile, password_hash=hash_password(password) if password else None
    )


def failures(app: CsmsApp, reason: str) -> float:
    value = app.metrics.registry.get_sample_value("csms_station_auth_failures_total", {"reason": reason})
    return value or 0.0


# --- profile 1: Basic auth over ws:// -----------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_profile1_accepts_the_right_password_and_refuses_everything_else(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms()
    await register(app, "P1", 1, PASSWORD)
    url = app.ocpp_url
    async with connect(url, "P1", version, password=PASSWORD) as ws:
        assert await heartbeat_ok(ws)
    assert await refusal(url, "P1", version, password="wrong-horse-battery") == 401
    assert await refusal(url, "P1", version, password=PASSWORD, user="P2") == 401
    assert await refusal(url, "P1", version) == 401
    assert await refusal(url, "NOBODY", version, password=PASSWORD) == 404
    assert failures(app, "wrong_password") == 1
    assert failures(app, "wrong_username") == 1
    assert failures(app, "no_credentials") == 1


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("sent", [KEY_HEX, KEY_HEX.upper(), KEY], ids=["hex", "HEX", "raw-bytes"])
async def test_authorization_key_is_compared_as_bytes_in_hex_or_raw_form(
    make_csms: MakeCsms, version: str, sent: str | bytes
) -> None:
    app = await make_csms()
    await register(app, "AK", 1, KEY_HEX)
    async with connect(app.ocpp_url, "AK", version, password=sent) as ws:
        assert await heartbeat_ok(ws)
    wrong = bytes(b ^ 1 for b in KEY)
    assert await refusal(app.ocpp_url, "AK", version, password=wrong.hex()) == 401
    assert await refusal(app.ocpp_url, "AK", version, password=wrong) == 401


@pytest.mark.parametrize("version", VERSIONS)
async def test_refused_response_asks_for_basic_auth_and_the_secret_is_never_logged(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms()
    await register(app, "LOG1", 1, PASSWORD)
    attempt = "attacker-guess-0123456789"
    with structlog.testing.capture_logs() as logs:
        with pytest.raises(websockets.InvalidStatus) as info:
            async with connect(app.ocpp_url, "LOG1", version, password=attempt):
                pass
        async with connect(app.ocpp_url, "LOG1", version, password=PASSWORD) as ws:
            assert await heartbeat_ok(ws)
    assert info.value.response.headers["WWW-Authenticate"].startswith("Basic")
    refused = [e for e in logs if e["event"] == "station login refused"]
    assert refused and refused[0]["station_id"] == "LOG1" and refused[0]["reason"] == "wrong_password"
    text = repr(logs)
    assert attempt not in text and PASSWORD not in text


@pytest.mark.parametrize("version", VERSIONS)
async def test_failed_logins_never_disturb_the_live_session(make_csms: MakeCsms, version: str) -> None:
    app = await make_csms()
    await register(app, "LIVE", 1, PASSWORD)
    async with connect(app.ocpp_url, "LIVE", version, password=PASSWORD) as ws:
        live = app.registry.get("LIVE")
        for attempt in ({"password": "not-the-password-x"}, {"password": PASSWORD, "user": "X"}, {}):
            assert await refusal(app.ocpp_url, "LIVE", version, **attempt) == 401
        assert app.registry.get("LIVE") is live and live is not None and not live.closed
        assert await heartbeat_ok(ws)


@pytest.mark.parametrize("version", VERSIONS)
async def test_profile0_needs_no_password_but_a_set_password_is_required(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms()
    await register(app, "P0", 0)
    await register(app, "P0PW", 0, PASSWORD)
    async with connect(app.ocpp_url, "P0", version) as ws:
        assert await heartbeat_ok(ws)
    assert await refusal(app.ocpp_url, "P0PW", version) == 401
    async with connect(app.ocpp_url, "P0PW", version, password=PASSWORD) as ws:
        assert await heartbeat_ok(ws)


# --- profile 2: TLS + Basic auth ------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_profile2_needs_tls_and_the_password(make_csms: MakeCsms, pki: Pki, version: str) -> None:
    app = await make_csms(tls=tls_settings(pki))
    await register(app, "P2", 2, PASSWORD)
    await register(app, "P1TLS", 1, PASSWORD)
    tls = pki.client_context()
    async with connect(app.ocpp_tls_url, "P2", version, password=PASSWORD, tls=tls) as ws:
        assert await heartbeat_ok(ws)
    assert await refusal(app.ocpp_url, "P2", version, password=PASSWORD) == 403  # downgrade to ws://
    assert await refusal(app.ocpp_tls_url, "P2", version, password="not-the-password-x", tls=tls) == 401
    assert await refusal(app.ocpp_tls_url, "P2", version, tls=tls) == 401
    async with connect(app.ocpp_tls_url, "P1TLS", version, password=PASSWORD, tls=tls) as ws:
        assert await heartbeat_ok(ws)  # a stronger transport than configured is fine
    assert failures(app, "tls_required") == 1


async def _tls_failure(url: str, station_id: str, version: str, tls: ssl.SSLContext, **kw: Any) -> Exception:
    """The connection fails in TLS (no HTTP status at all); returns the client's error."""
    try:
        async with connect(url, station_id, version, tls=tls, **kw) as ws:
            await ws.recv()  # TLS 1.3: the server's verdict on the client certificate arrives late
    except websockets.InvalidStatus as exc:
        raise AssertionError(f"refused in HTTP ({exc.response.status_code}), not in TLS") from exc
    except (OSError, ssl.SSLError, websockets.InvalidMessage, websockets.ConnectionClosed, EOFError) as exc:
        return exc
    raise AssertionError("connection succeeded")


async def test_tls_1_1_is_refused(make_csms: MakeCsms, pki: Pki) -> None:
    app = await make_csms(tls=tls_settings(pki))
    await register(app, "OLD", 2, PASSWORD)
    old = pki.client_context(max_version=ssl.TLSVersion.TLSv1_1)
    # control: this client really can speak TLS 1.1 when a server allows it
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        server_ctx.minimum_version = ssl.TLSVersion.TLSv1
    server_ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    server_ctx.load_cert_chain(str(pki.server_cert), str(pki.server_key))
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=server_ctx)
    async with server:
        port = server.sockets[0].getsockname()[1]
        _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=old)
        assert writer.get_extra_info("ssl_object").version() == "TLSv1.1"
        writer.close()
    err = await _tls_failure(app.ocpp_tls_url, "OLD", "ocpp1.6", old, password=PASSWORD)
    assert isinstance(err, ssl.SSLError | ConnectionError)
    assert app.registry.get("OLD") is None


# --- profile 3: mutual TLS --------------------------------------------------------------------
@pytest.mark.parametrize("version", VERSIONS)
async def test_profile3_accepts_only_a_valid_certificate_naming_the_station(
    make_csms: MakeCsms, pki: Pki, version: str
) -> None:
    app = await make_csms(tls=tls_settings(pki))
    await register(app, "P3", 3)
    url = app.ocpp_tls_url
    async with connect(url, "P3", version, tls=pki.client_context(pki.station_cert("P3"))) as ws:
        assert await heartbeat_ok(ws)
    other = pki.client_context(pki.station_cert("P3-OTHER"))
    assert await refusal(url, "P3", version, tls=other) == 403  # valid chain, wrong CN
    assert await refusal(url, "P3", version, tls=pki.client_context()) == 403  # no certificate
    assert await refusal(app.ocpp_url, "P3", version) == 403  # plain ws://
    foreign = pki.client_context(pki.station_cert("P3", pki.foreign_ca))
    await _tls_failure(url, "P3", version, foreign)
    expired = pki.client_context(pki.station_cert(
        "P3", not_before=_days_ago(30), not_after=_days_ago(1)))
    await _tls_failure(url, "P3", version, expired)
    assert failures(app, "client_cert_mismatch") == 1
    assert failures(app, "client_cert_required") == 1
    assert app.registry.get("P3") is None


def _days_ago(days: int) -> Any:
    import datetime as dt

    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days)


async def test_profile3_can_match_the_serial_number_instead(make_csms: MakeCsms, pki: Pki) -> None:
    app = await make_csms(tls=tls_settings(pki, client_identity="serial_number"))
    await register(app, "SITE-7", 3)
    assert app.store is not None
    await app.store.record_boot("SITE-7", OcppVersion.V201, StationInfo("V", "M", "SN-0042", None),
                                _days_ago(0))
    url = app.ocpp_tls_url
    async with connect(url, "SITE-7", "ocpp2.0.1", tls=pki.client_context(pki.station_cert("SN-0042"))) as ws:
        assert await heartbeat_ok(ws)
    by_id = pki.client_context(pki.station_cert("SITE-7"))
    assert await refusal(url, "SITE-7", "ocpp2.0.1", tls=by_id) == 403


async def test_profile_is_set_through_the_api_and_the_password_never_comes_back(
    make_csms: MakeCsms, pki: Pki
) -> None:
    import httpx

    app = await make_csms(tls=tls_settings(pki))
    async with httpx.AsyncClient(base_url=app.api_url) as api:
        r = await api.put("/api/chargers/API2", json={"security_profile": 2, "password": PASSWORD})
        assert r.status_code == 200 and PASSWORD not in r.text
        assert r.json()["security_profile"] == 2
        assert PASSWORD not in (await api.get("/api/chargers/API2")).text
    assert await refusal(app.ocpp_url, "API2", "ocpp1.6", password=PASSWORD) == 403
    tls = pki.client_context()
    async with connect(app.ocpp_tls_url, "API2", "ocpp1.6", password=PASSWORD, tls=tls) as ws:
        assert await heartbeat_ok(ws)


def test_no_private_key_is_committed_with_the_tests() -> None:
    here = os.path.dirname(__file__)
    for name in os.listdir(here):
        if name.endswith((".py", ".pem", ".key")):
            with open(os.path.join(here, name), encoding="utf-8") as f:
                assert "PRIVATE KEY-----" not in f.read().replace('"PRIVATE KEY-----"', ""), name
