"""Signed firmware: the simulator checks the signature with the signing certificate; a campaign
with a signature sends 1.6 SignedUpdateFirmware and 2.0.1 UpdateFirmware carrying it."""

from __future__ import annotations

from pathlib import Path

import pytest

from simulators.firmware import certificate_readable, image_version, signature_valid
from tests.firmware.fleet import fleet, image, specs
from tests.firmware.keys import certificate_pem, new_key, sign


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_a_signature_checks_out_only_for_the_signed_image_and_the_signing_key(kind: str) -> None:
    key, other = new_key(kind), new_key(kind)
    body = image("4.0.0")
    signature = sign(key, body)
    assert signature_valid(body, signature, certificate_pem(key))
    assert not signature_valid(body + b"!", signature, certificate_pem(key))
    assert not signature_valid(body, signature, certificate_pem(other))
    assert not signature_valid(body, "not base64!", certificate_pem(key))


def test_the_image_names_the_version_it_installs() -> None:
    assert image_version(b"SIMFW 4.0.0\nrest") == "4.0.0"
    assert image_version(b"\x00binary").startswith("sha256:")
    assert not certificate_readable("-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n")


async def test_a_signed_campaign_installs_on_both_versions_and_a_bad_signature_fails(tmp_path: Path) -> None:
    key = new_key("rsa")
    cert = certificate_pem(key)
    async with fleet(tmp_path, specs(4, "SG")) as f:
        good = image("5.0.0")
        file = await f.upload(good)
        first, second = list(f.chargers)[:2], list(f.chargers)[2:]
        r = await f.api.post("/api/firmware-campaigns", json={
            "version": "5.0.0", "file_id": file["file_id"], "targets": {"stations": first},
            "signature": sign(key, good), "signing_certificate": cert,
        })
        assert r.status_code == 201, r.text
        assert r.json()["signed"] is True
        done = await f.wait_state(r.json()["id"], "done")
        assert done["counts"]["installed"] == 2
        assert f.recorder.calls["SignedFirmwareStatusNotification"].count >= 5  # the 1.6 station
        assert f.recorder.calls["FirmwareStatusNotification"].count >= 5  # the 2.0.1 station
        for cid in first:
            assert (await f.api.get(f"/api/chargers/{cid}")).json()["firmware_version"] == "5.0.0"

        r = await f.api.post("/api/firmware-campaigns", json={
            "version": "5.0.0", "file_id": file["file_id"], "targets": {"stations": second},
            "signature": sign(new_key("rsa"), good), "signing_certificate": cert, "max_retries": 0,
        })
        failed = await f.wait_state(r.json()["id"], "done")
        assert failed["counts"]["failed"] == 2
        assert {s["last_status"] for s in failed["stations"]} == {"InvalidSignature"}
        for cid in second:
            assert (await f.api.get(f"/api/chargers/{cid}")).json()["firmware_version"] == "1.0.0"
        assert f.recorder.protocol_errors == 0, f.recorder.errors
