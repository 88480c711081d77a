"""Admission control on the live endpoint: accept-rate 503, per-IP pre-auth caps, failed-login
throttling (429) and the bound on queued password checks (503)."""

from __future__ import annotations

import asyncio
import socket

import websockets

from csms.security.passwords import hash_password
from tests.security.conftest import MakeCsms
from tests.security.peers import V16, V201, assert_over_the_pre_auth_cap, connect, heartbeat_ok, refusal

PASSWORD = "right-password-0123"


async def _status(url: str, station_id: str, **kw: object) -> int:
    try:
        async with connect(url, station_id, V16, **kw):  # type: ignore[arg-type]
            return 101
    except websockets.InvalidStatus as exc:
        return int(exc.response.status_code)


async def test_handshakes_beyond_the_accept_rate_get_503_with_retry_after(make_csms: MakeCsms) -> None:
    app = await make_csms(auto_register=True, limits={"accept_rate": 0.5, "accept_burst": 3})
    outcomes = []
    retry_after = None
    for i in range(6):
        try:
            async with connect(app.ocpp_url, f"R{i}", V16):
                outcomes.append(101)
        except websockets.InvalidStatus as exc:
            outcomes.append(exc.response.status_code)
            retry_after = exc.response.headers.get("Retry-After")
    assert outcomes == [101, 101, 101, 503, 503, 503]
    assert retry_after is not None and int(retry_after) >= 1
    refused = app.metrics.registry.get_sample_value("csms_admission_refused_total", {"reason": "accept_rate"})
    assert refused == 3


async def test_connections_not_yet_upgraded_are_capped_per_ip(make_csms: MakeCsms) -> None:
    app = await make_csms(auto_register=True, limits={"max_pre_auth_per_ip": 4, "open_timeout_s": 30})
    port = app.ocpp_port
    idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(4)]
    try:
        await asyncio.sleep(0.2)
        await assert_over_the_pre_auth_cap(port, app.ocpp_url, "CAPPED")
    finally:
        for s in idle:
            s.close()
    await asyncio.sleep(0.2)
    async with connect(app.ocpp_url, "AFTER", V16) as ws:  # slots are free again
        assert await heartbeat_ok(ws)


async def test_repeated_failed_logins_are_throttled_without_touching_the_live_session(
    make_csms: MakeCsms,
) -> None:
    app = await make_csms(limits={"auth_failures_per_ip": 3})
    assert app.store is not None
    await app.store.upsert_station("T1", security_profile=1, password_hash=hash_password(PASSWORD))
    async with connect(app.ocpp_url, "T1", V201, password=PASSWORD) as ws:
        for _ in range(3):
            assert await refusal(app.ocpp_url, "T1", V201, password="wrong-password-00000") == 401
        assert await refusal(app.ocpp_url, "T1", V201, password=PASSWORD) == 429
        assert await heartbeat_ok(ws)


async def test_password_checks_beyond_the_queue_bound_get_503(make_csms: MakeCsms) -> None:
    app = await make_csms(limits={"max_pending_password_checks": 1, "auth_failures_per_ip": 0})
    assert app.store is not None
    await app.store.upsert_station("Q1", security_profile=1, password_hash=hash_password(PASSWORD))
    statuses = await asyncio.gather(*(
        _status(app.ocpp_url, "Q1", password=f"wrong-password-{i:05d}") for i in range(6)
    ))
    assert set(statuses) == {401, 503} and statuses.count(503) >= 1
