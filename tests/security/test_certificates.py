"""SignCertificate -> CertificateSigned with the built-in CA, both versions, end to end: the
issued certificate then opens a profile-3 connection. CSRs naming another station are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from websockets.asyncio.client import ClientConnection

from csms.app import CsmsApp
from tests.security.conftest import MakeCsms, Pki, tls_settings
from tests.security.peers import V16, V201, VERSIONS, call, connect, heartbeat_ok

KeyT = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


def make_csr(common_name: str, key: KeyT | None = None) -> tuple[KeyT, str]:
    key = key or ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .sign(key, hashes.SHA256())
    )
    return key, csr.public_bytes(serialization.Encoding.PEM).decode()


async def _next_call(ws: ClientConnection, timeout: float = 5) -> list[Any]:
    frame = orjson.loads(await asyncio.wait_for(ws.recv(), timeout))
    assert frame[0] == 2, frame
    return list(frame)


async def _register(app: CsmsApp, station_id: str, profile: int) -> None:
    assert app.store is not None
    await app.store.upsert_station(station_id, security_profile=profile)


@pytest.mark.parametrize("version", VERSIONS)
async def test_signed_certificate_is_delivered_stored_and_opens_profile_3(
    make_csms: MakeCsms, pki: Pki, version: str, tmp_path: Any
) -> None:
    app = await make_csms(tls=tls_settings(pki))
    key, csr = make_csr("CS1")
    payload = {"csr": csr}
    if version == V201:
        payload["certificateType"] = "ChargingStationCertificate"
    await _register(app, "CS1", 0)  # commission at profile 0 over wss, as a fresh station would
    async with connect(app.ocpp_tls_url, "CS1", version, tls=pki.client_context()) as ws:
        reply = await call(ws, "SignCertificate", payload)
        assert reply[0] == 3 and reply[2]["status"] == "Accepted"
        signed = await _next_call(ws)
        assert signed[2] == "CertificateSigned"
        await ws.send(orjson.dumps([3, signed[1], {"status": "Accepted"}]).decode())
        chain = signed[3]["certificateChain"]
        if version == V201:
            assert signed[3]["certificateType"] == "ChargingStationCertificate"
    cert = x509.load_pem_x509_certificates(chain.encode())[0]
    async with httpx.AsyncClient(base_url=app.api_url) as api:
        ca = x509.load_pem_x509_certificate((await api.get("/api/ca.pem")).content)
        for _ in range(100):  # the station's verdict is stored right after it arrives
            listed = (await api.get("/api/chargers/CS1/certificates")).json()
            if listed and listed[0]["status"] != "Sent":
                break
            await asyncio.sleep(0.02)
    cert.verify_directly_issued_by(ca)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CS1"
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in eku
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert [c["serial"] for c in listed] == [f"{cert.serial_number:x}"]
    assert listed[0]["status"] == "Accepted"
    # the issued certificate is a valid profile-3 identity
    await _register(app, "CS1", 3)
    key_file, cert_file = tmp_path / "cs1.key", tmp_path / "cs1.pem"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    cert_file.write_text(chain)
    tls = pki.client_context()
    tls.load_cert_chain(str(cert_file), str(key_file))
    async with connect(app.ocpp_tls_url, "CS1", version, tls=tls) as ws:
        assert await heartbeat_ok(ws)


@pytest.mark.parametrize("version", VERSIONS)
async def test_csrs_that_cannot_be_signed_are_rejected_and_nothing_is_sent(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms()
    await _register(app, "CS2", 0)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    cases = [make_csr("CS-OTHER")[1], make_csr("CS2", weak)[1], "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"]
    async with connect(app.ocpp_url, "CS2", version) as ws:
        for csr in cases:
            reply = await call(ws, "SignCertificate", {"csr": csr})
            assert reply[0] == 3 and reply[2]["status"] == "Rejected", (csr[:40], reply)
        if version == V201:
            v2g_csr = {"csr": make_csr("CS2")[1], "certificateType": "V2GCertificate"}
            v2g = await call(ws, "SignCertificate", v2g_csr)
            assert v2g[2]["status"] == "Rejected"
        assert await heartbeat_ok(ws)  # and no CertificateSigned came in between
    assert app.store is not None and await app.store.list_certificates("CS2") == []


@pytest.mark.parametrize("version", VERSIONS)
async def test_install_certificate_sends_the_ca_in_the_station_version(
    make_csms: MakeCsms, version: str
) -> None:
    app = await make_csms()
    await _register(app, "CS3", 0)
    async with connect(app.ocpp_url, "CS3", version) as ws, httpx.AsyncClient(base_url=app.api_url) as api:
        request = asyncio.create_task(api.post("/api/chargers/CS3/certificates/install", json={}))
        frame = await _next_call(ws)
        await ws.send(orjson.dumps([3, frame[1], {"status": "Accepted"}]).decode())
        r = await request
        ca_pem = (await api.get("/api/ca.pem")).text
    assert r.json() == {"status": "Accepted"}
    assert frame[2] == "InstallCertificate" and frame[3]["certificate"] == ca_pem
    expected = "CentralSystemRootCertificate" if version == V16 else "CSMSRootCertificate"
    assert frame[3]["certificateType"] == expected


async def test_builtin_ca_is_generated_once_and_its_key_is_private(
    make_csms: MakeCsms, tmp_path: Any
) -> None:
    app = await make_csms()
    async with httpx.AsyncClient(base_url=app.api_url) as api:
        first = (await api.get("/api/ca.pem")).text
        assert first == (await api.get("/api/ca.pem")).text
    key = tmp_path / "ca" / "ca.key"
    assert key.exists() and (key.stat().st_mode & 0o077) == 0
    assert (tmp_path / "ca" / "ca.pem").read_text() == first
