"""The CA that signs station certificates (SignCertificate -> CertificateSigned).

Either the operator's CA (``ca.cert`` + ``ca.key``), or, for small deployments, a built-in
one: an EC P-256 root generated on first use and kept as ``ca.pem`` / ``ca.key`` (mode
0600) under ``ca.dir`` (default: ``ca/`` beside the SQLite database). A CSR is signed only
if its signature verifies, its key is strong enough and its subject names exactly the
station that sent it, so no station can obtain a certificate for another.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from csms.errors import ConfigError

CaKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
_CA_YEARS = 10
_BACKDATE = dt.timedelta(minutes=5)


def _spki(public: object) -> bytes:
    if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
        return b""
    return public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


class CsrRejected(Exception):
    """The CSR cannot be signed; the message says why (safe to log)."""


@dataclass(frozen=True, slots=True)
class SignedCertificate:
    certificate: x509.Certificate
    chain_pem: str  # leaf first, then intermediates (never a self-signed root)

    @property
    def serial_hex(self) -> str:
        return f"{self.certificate.serial_number:x}"


class CertificateAuthority:
    """Signs station CSRs with one CA certificate and key."""

    def __init__(self, cert: x509.Certificate, key: CaKey) -> None:
        if _spki(cert.public_key()) != _spki(key.public_key()):
            raise ConfigError("the CA key does not belong to the CA certificate")
        try:
            ca_flag = cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
        except x509.ExtensionNotFound:
            ca_flag = False
        if not ca_flag:
            raise ConfigError("the CA certificate is not a CA (basicConstraints CA:TRUE missing)")
        self.cert = cert
        self.key = key

    @property
    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    @property
    def self_signed(self) -> bool:
        return self.cert.issuer == self.cert.subject

    # --- loading ------------------------------------------------------------------------
    @classmethod
    def load(cls, cert_path: str | Path, key_path: str | Path) -> CertificateAuthority:
        try:
            cert = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
            key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot load CA {str(cert_path)!r} / {str(key_path)!r}: {exc}") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
            raise ConfigError("the CA key must be EC or RSA")
        return cls(cert, key)

    @classmethod
    def load_or_create(cls, directory: str | Path) -> CertificateAuthority:
        """The built-in CA in ``directory``, generated there if absent."""
        folder = Path(directory)
        cert_path, key_path = folder / "ca.pem", folder / "ca.key"
        if cert_path.exists() and key_path.exists():
            return cls.load(cert_path, key_path)
        if cert_path.exists() or key_path.exists():
            raise ConfigError(f"{folder} holds only one of ca.pem and ca.key; restore or remove it")
        ca = cls.generate()
        folder.mkdir(parents=True, exist_ok=True)
        key_pem = ca.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        cert_path.write_text(ca.cert_pem, encoding="ascii")
        return ca

    @classmethod
    def generate(cls, *, now: dt.datetime | None = None) -> CertificateAuthority:
        """A fresh EC P-256 root (10 years)."""
        now = now or dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "CSMS"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"CSMS built-in CA {secrets.token_hex(4)}"),
        ])
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + dt.timedelta(days=365 * _CA_YEARS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=False, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    # --- signing ------------------------------------------------------------------------
    def check_csr(
        self, csr_pem: str, expected_cn: str | None, organization: str = ""
    ) -> x509.CertificateSigningRequest:
        """The parsed CSR if it may be signed for ``expected_cn``; raises CsrRejected."""
        try:
            csr = x509.load_pem_x509_csr(csr_pem.encode())
        except ValueError:
            raise CsrRejected("not a PEM certificate signing request") from None
        if not csr.is_signature_valid:
            raise CsrRejected("CSR signature does not verify")
        key = csr.public_key()
        if isinstance(key, rsa.RSAPublicKey):
            if key.key_size < 2048:
                raise CsrRejected("RSA key shorter than 2048 bits")
        elif isinstance(key, ec.EllipticCurvePublicKey):
            if key.curve.name not in ("secp256r1", "secp384r1", "secp521r1"):
                raise CsrRejected(f"EC curve {key.curve.name} not accepted")
        else:
            raise CsrRejected("key type not accepted (RSA or EC only)")
        cns = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if expected_cn is None:
            raise CsrRejected("no identity known for this station")
        if len(cns) != 1 or cns[0].value != expected_cn:
            raise CsrRejected("CSR common name does not name this station")
        if organization:
            orgs = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
            if organization not in orgs:
                raise CsrRejected("CSR organization does not match")
        return csr

    def sign(
        self, csr: x509.CertificateSigningRequest, *, valid_days: int, now: dt.datetime | None = None
    ) -> SignedCertificate:
        """A TLS client certificate for the CSR's subject and key, never outliving the CA."""
        now = now or dt.datetime.now(dt.UTC)
        not_after = min(now + dt.timedelta(days=valid_days), self.cert.not_valid_after_utc)
        public = csr.public_key()
        if not isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            raise CsrRejected("key type not accepted (RSA or EC only)")
        cert = (
            x509.CertificateBuilder()
            .subject_name(csr.subject).issuer_name(self.cert.subject).public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False,
                key_encipherment=isinstance(public, rsa.RSAPublicKey), data_encipherment=False,
                key_agreement=isinstance(public, ec.EllipticCurvePublicKey), key_cert_sign=False,
                crl_sign=False, encipher_only=False, decipher_only=False,
            ), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
            .sign(self.key, hashes.SHA256())
        )
        chain = cert.public_bytes(serialization.Encoding.PEM).decode()
        if not self.self_signed:
            chain += self.cert_pem
        return SignedCertificate(cert, chain)


class CaProvider:
    """The configured CA, or the built-in one, loaded (or generated) on first use."""

    def __init__(self, *, cert: str = "", key: str = "", directory: str | Path = "ca") -> None:
        if bool(cert) != bool(key):
            raise ConfigError("ca.cert and ca.key must be set together")
        self._cert, self._key, self._dir = cert, key, Path(directory)
        self._ca: CertificateAuthority | None = None

    def get(self) -> CertificateAuthority:
        if self._ca is None:
            self._ca = (
                CertificateAuthority.load(self._cert, self._key) if self._cert
                else CertificateAuthority.load_or_create(self._dir)
            )
        return self._ca
