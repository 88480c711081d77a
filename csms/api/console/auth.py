"""The console's session cookie and request checks; the API's guard (``csms.api.auth``) uses them.

Signing in exchanges the operator API token for the cookie ``csms_console`` =
``HMAC-SHA256(api_token, "csms-console-session-v1")``: it grants what the token grants,
never reveals it, and dies when the token is rotated. It is ``HttpOnly`` and
``SameSite=Strict`` (``Secure`` behind HTTPS). A request authenticated by the cookie
alone must also carry ``X-CSMS-Console`` when it changes something: a custom header
cannot be sent cross-origin without a CORS preflight, which this server never grants.

This module imports nothing from the API, so the API's guard can import it.
"""

from __future__ import annotations

import hashlib
import hmac

from starlette.requests import HTTPConnection

COOKIE = "csms_console"
CONSOLE_HEADER = "x-csms-console"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_CONTEXT = b"csms-console-session-v1"


def session_value(api_token: str) -> str:
    """The cookie value that stands for ``api_token``."""
    return hmac.new(api_token.encode(), _CONTEXT, hashlib.sha256).hexdigest()


def same_origin(conn: HTTPConnection) -> bool:
    """False when a browser sent an ``Origin`` other than this server (cross-site WebSocket)."""
    origin = conn.headers.get("origin")
    if origin is None:
        return True  # not a browser: authentication decides
    host = conn.headers.get("host", "")
    return origin.split("://", 1)[-1].rstrip("/") == host
