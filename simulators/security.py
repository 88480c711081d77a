"""How the fleet's stations prove who they are: OCPP security profiles 1-3.

- Profile 1: HTTP Basic auth (username = station id) over ``ws://``.
- Profile 2: the same over ``wss://``, the CSMS's certificate checked against ``ca_file``
  (or the system's trust store).
- Profile 3: ``wss://`` with a client certificate whose CN is the station id, either loaded
  from a directory (``<id>.pem`` / ``<id>.key``) or issued on the fly by a given CA.

:class:`SecurityOptions` is plain data (it travels to worker processes);
:class:`Endpoints` is its per-process runtime: the URL list, one shared ``SSLContext`` for
all stations without a client certificate, and optional TLS session resumption. A client
certificate cannot be chosen per connection on a shared context, so a profile-3 station gets
its own small context while it connects and is connected (kept between connections only
with ``tls_resume``).
"""

from __future__ import annotations

import base64
import csv
import json
import os
import secrets
import ssl
import tempfile
import weakref
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from simulators.certificates import IssuingCa

MIN_PASSWORD, MAX_PASSWORD = 16, 40  # 2.0.1 BasicAuthPassword; a 1.6 key is 16-20 bytes as hex


class SecurityError(Exception):
    """Unusable security options (a bad file, a missing key...); the message says which."""


def load_passwords(path: str | Path) -> dict[str, str]:
    """``id,password`` lines (CSV, an optional ``id,password`` header) or a JSON object
    ``{"id": "password"}`` / list of ``{"id": ..., "password": ...}``."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise SecurityError(f"cannot read the password file {p}: {exc.strerror or exc}") from None
    if p.suffix.lower() == ".json" or text.lstrip()[:1] in ("{", "["):
        return _json_passwords(text, p)
    out: dict[str, str] = {}
    for n, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or row[0].startswith("#") or (n == 1 and [c.strip() for c in row] == ["id", "password"]):
            continue
        if len(row) != 2 or not row[0].strip() or not row[1]:
            raise SecurityError(f"{p} line {n}: expected 'id,password', got {','.join(row)!r}")
        out[row[0].strip()] = row[1]
    return out


def _json_passwords(text: str, p: Path) -> dict[str, str]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SecurityError(f"{p} is not valid JSON: {exc}") from None
    if isinstance(data, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in data.items()):
        return dict(data)
    if isinstance(data, list) and all(
        isinstance(e, dict) and isinstance(e.get("id"), str) and isinstance(e.get("password"), str)
        for e in data
    ):
        return {e["id"]: e["password"] for e in data}
    raise SecurityError(f'{p}: expected {{"id": "password", ...}} or [{{"id": ..., "password": ...}}, ...]')


def generate_passwords(station_ids: Iterable[str]) -> dict[str, str]:
    """A random 32-hex-digit password per station: valid as a 2.0.1 BasicAuthPassword and as
    a 16-byte 1.6 AuthorizationKey."""
    return {sid: secrets.token_hex(16) for sid in station_ids}


def passwords_csv(passwords: Mapping[str, str]) -> str:
    return "id,password\n" + "".join(f"{sid},{pw}\n" for sid, pw in passwords.items())


@dataclass(frozen=True, slots=True, kw_only=True)
class SecurityOptions:
    """Credentials and trust for every station of a fleet (picklable, no open resources)."""

    passwords: Mapping[str, str] = field(default_factory=dict)
    password_pattern: str | None = None  # '{id}' is replaced by the station id
    ca_file: str | None = None  # trusted CAs for the CSMS's certificate (None: the system's)
    client_ca_cert: str | None = None  # profile 3: issue client certificates with this CA...
    client_ca_key: str | None = None
    client_cert_dir: str | None = None  # ...or load <id>.pem / <id>.key from here
    tls_resume: bool = False

    def __post_init__(self) -> None:
        if self.password_pattern is not None and "{id}" not in self.password_pattern:
            raise SecurityError(f"the password pattern must contain '{{id}}', got {self.password_pattern!r}")
        if (self.client_ca_cert is None) != (self.client_ca_key is None):
            raise SecurityError("give both the client CA certificate and its key")
        if self.client_ca_cert is not None and self.client_cert_dir is not None:
            raise SecurityError("give either a client CA or a client certificate directory, not both")

    def password_for(self, station_id: str) -> str | None:
        password = self.passwords.get(station_id)
        if password is None and self.password_pattern is not None:
            password = self.password_pattern.replace("{id}", station_id)
        return password

    @property
    def client_certificates(self) -> bool:
        return self.client_ca_cert is not None or self.client_cert_dir is not None

    def profile(self, url: str) -> int:
        """The OCPP security profile the stations use against ``url``."""
        tls = urlsplit(url).scheme == "wss"
        if tls and self.client_certificates:
            return 3
        if self.passwords or self.password_pattern is not None:
            return 2 if tls else 1
        return 0

    def describe(self) -> dict[str, Any]:
        """For the report: what is used, never a secret."""
        source = ("file" if self.passwords else "pattern" if self.password_pattern else None)
        certs = ("issued" if self.client_ca_cert else "directory" if self.client_cert_dir else None)
        return {"passwords": source, "ca_file": self.ca_file, "client_certificates": certs,
                "tls_resume": self.tls_resume}

    def check(self, station_ids: Sequence[str]) -> None:
        """Raise :class:`SecurityError` when a station has no usable credentials."""
        if self.passwords and self.password_pattern is None:
            missing = [sid for sid in station_ids if sid not in self.passwords]
            if missing:
                more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
                raise SecurityError(f"the password file has no password for {', '.join(missing[:3])}{more}")
        if self.client_cert_dir is not None:
            folder = Path(self.client_cert_dir)
            for sid in station_ids:
                for suffix in (".pem", ".key"):
                    if not (folder / f"{sid}{suffix}").is_file():
                        raise SecurityError(f"no client certificate file {folder / (sid + suffix)}")
        if self.client_ca_cert is not None and self.client_ca_key is not None:
            from simulators.certificates import CertificateError, load_ca  # cryptography: profile 3 only

            try:
                load_ca(self.client_ca_cert, self.client_ca_key)
            except CertificateError as exc:
                raise SecurityError(str(exc)) from None
        if self.ca_file is not None and not Path(self.ca_file).is_file():
            raise SecurityError(f"no CA bundle at {self.ca_file}")


# --- per-process runtime ----------------------------------------------------------------------


class _ResumingContext(ssl.SSLContext):
    """A client context that offers the last TLS session it saw for the same server."""

    sessions: dict[str, ssl.SSLSession]

    def wrap_bio(
        self, incoming: ssl.MemoryBIO, outgoing: ssl.MemoryBIO, server_side: bool = False,
        server_hostname: str | bytes | None = None, session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        if session is None and server_hostname is not None:
            key = server_hostname.decode() if isinstance(server_hostname, bytes) else server_hostname
            session = self.sessions.get(key)
        return super().wrap_bio(incoming, outgoing, server_side, server_hostname, session)


class Endpoints:
    """Where and how the stations of one process connect: URLs, Basic auth, TLS contexts."""

    def __init__(self, urls: Sequence[str], options: SecurityOptions | None = None) -> None:
        if not urls:
            raise ValueError("at least one CSMS URL is needed")
        self.urls = tuple(u.rstrip("/") for u in urls)
        self.options = options or SecurityOptions()
        self._shared: ssl.SSLContext | None = None
        self._own: dict[str, ssl.SSLContext] = {}  # profile 3 with resumption: kept per station
        self._alive: weakref.WeakValueDictionary[str, ssl.SSLContext] = weakref.WeakValueDictionary()
        self._ca: IssuingCa | None = None
        self._pems: dict[str, tuple[bytes, bytes]] = {}  # issued certificates, per station
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def headers(self, station_id: str) -> dict[str, str] | None:
        password = self.options.password_for(station_id)
        if password is None:
            return None
        token = base64.b64encode(f"{station_id}:{password}".encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def ssl_for(self, station_id: str, url: str) -> ssl.SSLContext | None:
        """The context for a ``wss://`` URL (None for ``ws://``)."""
        if urlsplit(url).scheme != "wss":
            return None
        if not self.options.client_certificates:
            if self._shared is None:
                self._shared = self._context()
            return self._shared
        ctx = self._own.get(station_id) or self._alive.get(station_id)
        if ctx is None:
            ctx = self._context()
            self._load_client_cert(ctx, station_id)
            if self.options.tls_resume:
                self._own[station_id] = ctx
            else:
                self._alive[station_id] = ctx
        return ctx

    def connected(self, ssl_object: ssl.SSLObject | None) -> bool | None:
        """Note a finished TLS handshake; whether it resumed a session (None: no TLS)."""
        if ssl_object is None:
            return None
        ctx = ssl_object.context
        session = ssl_object.session
        if (isinstance(ctx, _ResumingContext) and session is not None and session.has_ticket
                and ssl_object.server_hostname):
            ctx.sessions[ssl_object.server_hostname] = session
        return bool(ssl_object.session_reused)

    def close(self) -> None:
        self._own.clear()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def _context(self) -> ssl.SSLContext:
        ctx: ssl.SSLContext = (_ResumingContext if self.options.tls_resume else ssl.SSLContext)(
            ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        if isinstance(ctx, _ResumingContext):
            ctx.sessions = {}
        if self.options.ca_file is not None:
            ctx.load_verify_locations(cafile=self.options.ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        return ctx

    def _load_client_cert(self, ctx: ssl.SSLContext, station_id: str) -> None:
        o = self.options
        if o.client_cert_dir is not None:
            folder = Path(o.client_cert_dir)
            ctx.load_cert_chain(folder / f"{station_id}.pem", folder / f"{station_id}.key")
            return
        pems = self._pems.get(station_id)
        if pems is None:
            from simulators.certificates import issue_client_cert, load_ca  # cryptography: only here

            if self._ca is None:
                assert o.client_ca_cert is not None and o.client_ca_key is not None
                self._ca = load_ca(o.client_ca_cert, o.client_ca_key)
            pems = self._pems[station_id] = issue_client_cert(station_id, *self._ca)
        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="csms-sim-certs-")
        # the ssl module loads certificates from files only: write, load, delete at once
        cert_path, key_path = Path(self._tmp.name) / "cert.pem", Path(self._tmp.name) / "key.pem"
        cert_path.write_bytes(pems[0])
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pems[1])
        try:
            ctx.load_cert_chain(cert_path, key_path)
        finally:
            cert_path.unlink(missing_ok=True)
            key_path.unlink(missing_ok=True)
