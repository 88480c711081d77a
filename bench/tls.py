"""``wss://`` for the benchmarks: a throw-away PKI and stations registered on security profile 2 or 3.

:class:`BenchPki` writes, in a temporary directory, an EC P-256 server CA and a server
certificate for the benchmark's loopback address, and an EC P-256 client CA (certificate and
key) from which the load generator issues each profile-3 station its own client certificate
(CN = station id). :func:`register` stores stations the way the CSMS stores them:

* profile 2: HTTP Basic auth over TLS, the password kept as the CSMS keeps one it generated
  (salted HMAC-SHA256); every station uses ``PASSWORD`` (hashed once, checked per station);
* profile 3: a client certificate chaining to the client CA whose CN names the station.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

PASSWORD = "0123456789abcdef0123456789abcdef01234567"  # 40 hex digits: a valid 1.6 AuthorizationKey


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _certificate(
    subject: str, public: ec.EllipticCurvePublicKey, issuer: x509.Name, signer: ec.EllipticCurvePrivateKey,
    *, ca: bool, ip: str | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer).public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=0 if ca else None), critical=True)
    )
    if ip is not None:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip))]), critical=False)
    return builder.sign(signer, hashes.SHA256())


class BenchPki:
    """Server CA, server certificate for ``host`` and client CA, as PEM files in ``self.dir``."""

    def __init__(self, host: str) -> None:
        self.dir = tempfile.mkdtemp(prefix="csms-bench-pki-")
        pem = serialization.Encoding.PEM
        files: dict[str, bytes] = {}
        for role in ("server", "client"):
            key = ec.generate_private_key(ec.SECP256R1())
            ca_name = _name(f"bench {role} CA")
            cert = _certificate(f"bench {role} CA", key.public_key(), ca_name, key, ca=True)
            files[f"{role}-ca.pem"] = cert.public_bytes(pem)
            files[f"{role}-ca.key"] = _key_pem(key)
            if role == "server":
                leaf_key = ec.generate_private_key(ec.SECP256R1())
                leaf = _certificate(host, leaf_key.public_key(), ca_name, key, ca=False, ip=host)
                files["server.pem"] = leaf.public_bytes(pem)
                files["server.key"] = _key_pem(leaf_key)
        for name, data in files.items():
            path = Path(self.dir, name)
            path.write_bytes(data)
            if name.endswith(".key"):
                os.chmod(path, 0o600)

    def path(self, name: str) -> str:
        return str(Path(self.dir, name))

    def server_config(self, **extra: Any) -> dict[str, Any]:
        """The CSMS's ``[tls]`` section: this certificate, profile-3 clients from the client CA."""
        return {"cert": self.path("server.pem"), "key": self.path("server.key"),
                "client_ca": self.path("client-ca.pem"), **extra}

    def loadgen_args(self, profile: int) -> list[str]:
        """``bench.loadgen`` options: trust the server CA; profile 3 also issues client certificates."""
        args = ["--ca-file", self.path("server-ca.pem")]
        if profile == 3:
            args += ["--client-ca-cert", self.path("client-ca.pem"),
                     "--client-ca-key", self.path("client-ca.key")]
        return args

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def create_database(db: str) -> None:
    """An empty database with the CSMS's schema (its own migrations)."""
    from csms.store.sql import SqlStore

    async def create() -> None:
        await (await SqlStore.open(db)).close()

    asyncio.run(create())


def register(db: str, station_ids: Iterable[str], *, profile: int, password_hash: str | None) -> int:
    """Store ``station_ids`` on ``profile`` with ``password_hash`` (None: no password); how many."""
    from csms.store.direct import sqlite_ts

    now = sqlite_ts(dt.datetime.now(dt.UTC))
    rows = [(sid, profile, password_hash, now) for sid in station_ids]
    with sqlite3.connect(db) as conn:
        conn.executemany(
            "INSERT INTO stations (station_id, security_profile, password_hash, registered_at) "
            "VALUES (?, ?, ?, ?)", rows)
    return len(rows)


def generated_hash(password: str = PASSWORD) -> str:
    from csms.security.passwords import hash_generated_password

    return hash_generated_password(password)
