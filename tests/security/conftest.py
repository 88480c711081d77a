"""Fixtures for the security tests: a throw-away PKI (trustme, in memory and tmp files only)
and CSMS instances with TLS, client-certificate checking and tight limits."""

from __future__ import annotations

import ssl
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme

from csms.app import CsmsApp, running
from tests.conftest import make_settings


@dataclass
class Pki:
    """A server CA with a 127.0.0.1 certificate, a client CA, and a foreign CA."""

    server_ca: trustme.CA
    client_ca: trustme.CA
    foreign_ca: trustme.CA
    server_cert: Path
    server_key: Path
    client_ca_file: Path

    def client_context(
        self, cert: trustme.LeafCert | None = None, *, max_version: ssl.TLSVersion | None = None
    ) -> ssl.SSLContext:
        """What a station uses: trust the server CA, optionally present ``cert``."""
        ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
        self.server_ca.configure_trust(ctx)
        if cert is not None:
            cert.configure_cert(ctx)
        if max_version is not None:
            with warnings.catch_warnings():  # deliberately deprecated protocol versions
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ssl.TLSVersion.TLSv1
                ctx.maximum_version = max_version
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        return ctx

    def station_cert(self, common_name: str, ca: trustme.CA | None = None, **kwargs: Any) -> trustme.LeafCert:
        return (ca or self.client_ca).issue_cert(f"{common_name}.stations.invalid", common_name=common_name,
                                                 **kwargs)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, foreign_ca = trustme.CA(), trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert("127.0.0.1", "localhost")
    cert, key, cas = folder / "server.pem", folder / "server.key", folder / "client-ca.pem"
    leaf.cert_chain_pems[0].write_to_path(str(cert))
    leaf.private_key_pem.write_to_path(str(key))
    client_ca.cert_pem.write_to_path(str(cas))
    return Pki(server_ca, client_ca, foreign_ca, cert, key, cas)


MakeCsms = Callable[..., Awaitable[CsmsApp]]


@pytest.fixture
async def make_csms(tmp_path: Path) -> AsyncIterator[MakeCsms]:
    """Start CSMS instances (stopped after the test); keyword arguments are settings."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(**overrides: Any) -> CsmsApp:
            nonlocal count
            count += 1
            base: dict[str, Any] = {"auto_register": False, "db": str(tmp_path / f"csms{count}.sqlite3")}
            base.update(overrides)
            return await stack.enter_async_context(running(make_settings(tmp_path, **base)))

        yield make


def tls_settings(pki: Pki, **extra: Any) -> dict[str, Any]:
    return {"cert": str(pki.server_cert), "key": str(pki.server_key), "client_ca": str(pki.client_ca_file),
            "port": 0, **extra}
