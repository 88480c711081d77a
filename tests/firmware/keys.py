"""Signing keys and certificates generated for the firmware tests (nothing is committed)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

SigningKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


def new_key(kind: str = "rsa") -> SigningKey:
    return rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())


def certificate_pem(key: SigningKey, name: str = "Firmware Signing") -> str:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(minutes=1))
            .not_valid_after(now + timedelta(days=1)).sign(key, hashes.SHA256()))
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def sign(key: SigningKey, image: bytes) -> str:
    """The base64 SHA-256 signature of ``image``."""
    if isinstance(key, rsa.RSAPrivateKey):
        raw = key.sign(image, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = key.sign(image, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode()
