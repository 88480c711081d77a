"""From ``Settings`` to the security parts the composition root hands to the OCPP server."""

from __future__ import annotations

import ssl
from pathlib import Path

from csms.config import Settings
from csms.security.ca import CaProvider
from csms.security.tls import server_context, shrink_read_buffer


def ca_directory(settings: Settings) -> Path:
    """``ca.dir``, else ``ca/`` beside the SQLite database, else ``./csms-ca``."""
    if settings.ca.dir:
        return Path(settings.ca.dir)
    db = settings.db
    if db.startswith(("postgres", "sqlite+aiosqlite:///:memory:")) or db == ":memory:":
        return Path("csms-ca")
    for prefix in ("sqlite+aiosqlite:///", "sqlite:///"):
        if db.startswith(prefix):
            db = db[len(prefix):]
    return Path(db).expanduser().parent / "ca"


def security_parts(settings: Settings) -> tuple[ssl.SSLContext | None, CaProvider | None]:
    """The ``wss://`` context (None without ``tls.cert``) and the signing CA (None when disabled).

    With TLS on, certificates the CA signs are trusted as client certificates too (profile 3).
    """
    ca = (
        CaProvider(cert=settings.ca.cert, key=settings.ca.key, directory=ca_directory(settings))
        if settings.ca.enabled else None
    )
    if not settings.tls.cert and not settings.tls.key:
        return None, ca
    extra = [ca.get().cert_pem] if ca is not None else []
    context = server_context(settings.tls, extra)
    shrink_read_buffer(settings.tls.read_buffer_kb)
    return context, ca
