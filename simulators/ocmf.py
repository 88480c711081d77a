"""Signed meter values as a calibration-law meter would send them: OCMF (Open Charge Metering
Format) readings signed with ECDSA P-256 over SHA-256.

The key is a fixed test key (``TEST_KEY_SECRET``), published here on purpose: it lets a CSMS's
tests check signatures, and it must never sign anything real. A reading is
``OCMF|<payload JSON>|{"SA":"ECDSA-secp256r1-SHA256","SD":"<DER signature, hex>"}``.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime
from functools import cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

TEST_KEY_SECRET = 0x5EED_0C4F_D00D_2026_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0000_0001
SIGNING_METHOD = "ECDSA-secp256r1-SHA256"
_TYPE = {"Transaction.Begin": "B", "Transaction.End": "E", "Sample.Periodic": "T"}


@cache
def _key() -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(TEST_KEY_SECRET, ec.SECP256R1())


@cache
def public_key_der() -> bytes:
    """The test key's public half (SubjectPublicKeyInfo, DER)."""
    return _key().public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)


def public_key_b64() -> str:
    return base64.b64encode(public_key_der()).decode("ascii")


def _ocmf_time(ts: datetime) -> str:
    """OCMF's time: ``2026-12-07T10:00:00,000+0000 S`` (S: synchronised clock)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S,") + f"{ts.microsecond // 1000:03d}" + ts.strftime("%z") + " S"


def reading(*, gateway_id: str, meter_serial: str, pagination: str, tx_id: str, id_tag: str,
            ts: datetime, register_wh: float, context: str) -> str:
    """One signed OCMF reading of the energy register (kWh with three decimals, as meters show it)."""
    payload = {
        "FV": "1.0", "GI": gateway_id, "GS": meter_serial, "PG": pagination, "MF": "sim-1",
        "IS": True, "IT": "ISO14443", "ID": id_tag, "TT": tx_id,
        "RD": [{"TM": _ocmf_time(ts), "TX": _TYPE.get(context, "T"), "RV": round(register_wh / 1000, 3),
                "RI": "1-b:1.8.0", "RU": "kWh", "ST": "G"}],
    }
    body = json.dumps(payload, separators=(",", ":"))
    signature = _key().sign(body.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    return f"OCMF|{body}|" + json.dumps({"SA": SIGNING_METHOD, "SD": signature.hex()}, separators=(",", ":"))


def verify(ocmf: str, public_der: bytes | None = None) -> bool:
    """Whether ``ocmf``'s signature holds for its payload (under the test key by default)."""
    try:
        _, body, sig = ocmf.split("|", 2)
        signature = bytes.fromhex(json.loads(sig)["SD"])
        key = serialization.load_der_public_key(public_der or public_key_der())
        assert isinstance(key, ec.EllipticCurvePublicKey)
        key.verify(signature, body.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except Exception:
        return False
    return True
