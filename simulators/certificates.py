"""Client certificates for security profile 3: load the issuing CA, issue one per station.

Imported only when a fleet issues certificates (``cryptography`` costs a process ~9 MB).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID


class CertificateError(ValueError):
    """The CA's certificate or key cannot be used; the message says which file and why."""


CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
IssuingCa = tuple[x509.Certificate, CaKey]


def load_ca(cert_path: str, key_path: str) -> IssuingCa:
    try:
        cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
    except (OSError, ValueError) as exc:
        raise CertificateError(f"cannot load the client CA ({cert_path}, {key_path}): {exc}") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"the client CA key {key_path} must be an EC or RSA key")
    return cert, key


def issue_client_cert(
    station_id: str, ca_cert: x509.Certificate, ca_key: CaKey, *, days: int = 30
) -> tuple[bytes, bytes]:
    """A P-256 client certificate with CN = ``station_id`` signed by the CA: (cert PEM, key PEM)."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station_id)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
