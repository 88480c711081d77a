"""Browser authentication for the console: the API token, exchanged once for an HttpOnly cookie.

The cookie holds ``HMAC-SHA256(api_token, "csms-console-session-v1")``, not the token
itself: it grants what the token grants, never reveals it, and dies when the token is
rotated. It is ``HttpOnly`` and ``SameSite=Strict`` (``Secure`` behind HTTPS). A
request authenticated by the cookie alone must also carry ``X-CSMS-Console`` when it
changes something: a custom header cannot be sent cross-origin without a CORS
preflight, which this server never grants, so another site cannot forge the request.

This module imports nothing from the API module, so ``require_token`` can use it.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection

from csms.config import Settings

COOKIE = "csms_console"
CONSOLE_HEADER = "x-csms-console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CONTEXT = b"csms-console-session-v1"


def auth_required(settings: Settings) -> bool:
    """Same rule as the API: a token is needed off loopback, or whenever one is configured."""
    return settings.api_needs_token or bool(settings.api_token)


def session_value(api_token: str) -> str:
    """The cookie value that stands for ``api_token``."""
    return hmac.new(api_token.encode(), _CONTEXT, hashlib.sha256).hexdigest()


def _equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def token_ok(token: str, settings: Settings) -> bool:
    """True when ``token`` is the configured API token."""
    return bool(token) and bool(settings.api_token) and _equal(token, settings.api_token)


def bearer_token(conn: HTTPConnection) -> str:
    """The token of ``Authorization: Bearer`` (or ``X-API-Token``), empty when absent."""
    header = conn.headers.get("authorization", "")
    return header[7:] if header.lower().startswith("bearer ") else conn.headers.get("x-api-token", "")


def console_session_ok(conn: HTTPConnection, api_token: str) -> bool:
    """True when the console cookie is valid and, for unsafe methods, the console header is present.

    WebSocket handshakes are GETs; their Origin is checked separately (``same_origin``).
    """
    cookie = conn.cookies.get(COOKIE, "")
    if not cookie or not api_token or not _equal(cookie, session_value(api_token)):
        return False
    method = conn.scope.get("method", "GET")
    return method in SAFE_METHODS or CONSOLE_HEADER in conn.headers


def authenticated(conn: HTTPConnection, settings: Settings) -> bool:
    """Bearer token or console cookie, when authentication is required at all."""
    if not auth_required(settings):
        return True
    token = bearer_token(conn)
    if token:
        return token_ok(token, settings)
    return console_session_ok(conn, settings.api_token)


def same_origin(conn: HTTPConnection) -> bool:
    """False when a browser sent an ``Origin`` other than this server (cross-site WebSocket)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a browser: authentication decides
    host = conn.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host
