"""Operator API: read-only and operator tokens, failed-attempt limiting, console cookie + CSRF."""

from __future__ import annotations

import httpx
import pytest
import structlog

from csms.api.console.auth import CONSOLE_HEADER, COOKIE, session_value
from tests.security.conftest import MakeCsms

OPERATOR = "operator-token-0123456789abcdef"
READER = "reader-token-0123456789abcdef"


@pytest.fixture
async def api(make_csms: MakeCsms) -> httpx.AsyncClient:
    app = await make_csms(api_token=OPERATOR, api_readonly_token=READER, limits={"api_failures_per_ip": 5})
    return httpx.AsyncClient(base_url=app.api_url, timeout=10)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_read_only_token_reads_but_cannot_change_anything(api: httpx.AsyncClient) -> None:
    async with api:
        assert (await api.get("/api/chargers", headers=bearer(READER))).status_code == 200
        r = await api.put("/api/chargers/X1", json={"security_profile": 0}, headers=bearer(READER))
        assert r.status_code == 403
        assert (await api.delete("/api/id-tags/T", headers={"X-API-Token": READER})).status_code == 403
        r = await api.put("/api/chargers/X1", json={"security_profile": 0}, headers=bearer(OPERATOR))
        assert r.status_code == 200
        assert (await api.get("/api/chargers/X1", headers={"X-API-Token": OPERATOR})).status_code == 200


async def test_failed_attempts_are_limited_per_client_and_never_logged(api: httpx.AsyncClient) -> None:
    async with api:
        with structlog.testing.capture_logs() as logs:
            for i in range(5):
                assert (await api.get("/api/chargers", headers=bearer(f"guess-{i}"))).status_code == 401
        assert (await api.get("/api/chargers", headers=bearer(OPERATOR))).status_code == 429
        assert "guess-0" not in repr(logs) and any(e["event"] == "api authentication failed" for e in logs)


async def test_console_cookie_needs_the_console_header_to_change_things(api: httpx.AsyncClient) -> None:
    async with api:
        api.cookies.set(COOKIE, session_value(OPERATOR))
        assert (await api.get("/api/chargers")).status_code == 200
        body = {"security_profile": 0}
        assert (await api.put("/api/chargers/C1", json=body)).status_code == 403  # forged cross-site
        r = await api.put("/api/chargers/C1", json=body, headers={CONSOLE_HEADER: "1"})
        assert r.status_code == 200
        api.cookies.set(COOKIE, session_value("some-other-token"))
        assert (await api.get("/api/chargers")).status_code == 401


async def test_loopback_without_tokens_stays_open(make_csms: MakeCsms) -> None:
    app = await make_csms()
    async with httpx.AsyncClient(base_url=app.api_url) as api:
        assert (await api.put("/api/chargers/OPEN", json={"security_profile": 0})).status_code == 200
