"""Who may use the operator API, and for what.

Two roles: ``api_token`` is an operator (everything), ``api_readonly_token`` reads only
(GET/HEAD; anything else is 403). Tokens come as ``Authorization: Bearer``, or
``X-API-Token``, compared in constant time; the console's session cookie counts as the
operator token, and a state-changing request carried by that cookie alone must also send
the console header (CSRF: a custom header cannot be sent cross-site without a CORS
preflight, which this server never grants). Failed attempts are counted per client IP;
past ``limits.api_failures_per_ip`` a minute the answer is 429 without checking anything.
Tokens are never logged.
"""

from __future__ import annotations

import enum
import hmac
import time
from collections.abc import Callable

import structlog
from fastapi import HTTPException
from starlette.requests import HTTPConnection

from csms.api.console.auth import CONSOLE_HEADER, COOKIE, SAFE_METHODS, session_value
from csms.config import Settings
from csms.security.limits import WindowCounter

log = structlog.get_logger("csms.api")


class Role(enum.Enum):
    READ = "read"
    OPERATOR = "operator"


def _equal(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


def _presented_token(conn: HTTPConnection) -> str:
    header = conn.headers.get("authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else conn.headers.get("x-api-token", "")


class ApiGuard:
    """The API's authentication and authorisation state (one per app)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings
        self.clock = clock
        self.failures = WindowCounter(settings.limits.api_failures_per_ip, 60.0)

    @property
    def required(self) -> bool:
        s = self.settings
        return s.api_needs_token or bool(s.api_token) or bool(s.api_readonly_token)

    def role_of(self, conn: HTTPConnection) -> Role | None:
        """The role the request's credentials grant, None if they grant nothing."""
        s = self.settings
        token = _presented_token(conn)
        if token:
            if _equal(token, s.api_token):
                return Role.OPERATOR
            if _equal(token, s.api_readonly_token):
                return Role.READ
            return None
        cookie = conn.cookies.get(COOKIE, "")
        if s.api_token and _equal(cookie, session_value(s.api_token)):
            return Role.OPERATOR
        return None

    def check(self, conn: HTTPConnection) -> Role:
        """The caller's role; raises 401 (no or wrong credentials), 403 (role, CSRF) or 429."""
        if not self.required:
            return Role.OPERATOR
        ip = conn.client.host if conn.client else "?"
        now = self.clock()
        if self.failures.exceeded(ip, now):
            raise HTTPException(429, "too many failed attempts, retry later", headers={"Retry-After": "60"})
        role = self.role_of(conn)
        if role is None:
            count = self.failures.add(ip, now)
            if count <= max(self.failures.limit, 1):
                log.warning("api authentication failed", remote=ip, path=conn.url.path)
            raise HTTPException(401, "missing or wrong API token", headers={"WWW-Authenticate": "Bearer"})
        method = conn.scope.get("method", "GET")
        if method not in SAFE_METHODS:
            if role is Role.READ:
                raise HTTPException(403, "this token is read-only")
            if not _presented_token(conn) and CONSOLE_HEADER not in conn.headers:
                raise HTTPException(403, f"cookie-authenticated changes need the {CONSOLE_HEADER} header")
        return role


def guard_of(conn: HTTPConnection) -> ApiGuard:
    """The app's guard, created on first use from the app's settings."""
    state = conn.app.state
    guard: ApiGuard | None = getattr(state, "api_guard", None)
    if guard is None:
        guard = ApiGuard(state.ctx.settings)
        state.api_guard = guard
    return guard
