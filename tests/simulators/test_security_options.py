"""The fleet's security options and failure causes, without sockets."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from simulators.certificates import issue_client_cert
from simulators.failures import cause_of, classify, explain
from simulators.security import (
    Endpoints,
    SecurityError,
    SecurityOptions,
    generate_passwords,
    load_passwords,
)


@pytest.mark.parametrize(("name", "text"), [
    ("p.csv", "id,password\nCP1,secret-one-0123456\n# comment\nCP2,with,comma\n"),
    ("p.json", '{"CP1": "secret-one-0123456", "CP2": "with,comma"}'),
    ("p.txt", '[{"id": "CP1", "password": "secret-one-0123456"}, {"id": "CP2", "password": "with,comma"}]'),
])
def test_password_files_are_read_as_csv_or_json(tmp_path: Path, name: str, text: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    if name.endswith(".csv"):
        with pytest.raises(SecurityError, match="line 4: expected 'id,password'"):
            load_passwords(path)
        path.write_text(text.replace("CP2,with,comma", '"CP2","with,comma"'))
    assert load_passwords(path) == {"CP1": "secret-one-0123456", "CP2": "with,comma"}


def test_bad_password_sources_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SecurityError, match="cannot read the password file"):
        load_passwords(tmp_path / "missing.csv")
    (tmp_path / "bad.json").write_text('{"CP1": 5}')
    with pytest.raises(SecurityError, match="expected"):
        load_passwords(tmp_path / "bad.json")
    with pytest.raises(SecurityError, match=r"must contain '\{id\}'"):
        SecurityOptions(password_pattern="same-for-all")
    with pytest.raises(SecurityError, match="both the client CA certificate and its key"):
        SecurityOptions(client_ca_cert="ca.pem")
    with pytest.raises(SecurityError, match="no password for CP2"):
        SecurityOptions(passwords={"CP1": "x" * 16}).check(["CP1", "CP2"])


def test_profile_and_basic_auth_follow_the_options() -> None:
    pattern = SecurityOptions(password_pattern="pw-{id}-0123456789")
    assert pattern.password_for("CP7") == "pw-CP7-0123456789"
    assert pattern.profile("ws://h/ocpp") == 1 and pattern.profile("wss://h/ocpp") == 2
    assert SecurityOptions(client_cert_dir="certs").profile("wss://h/ocpp") == 3
    assert SecurityOptions().profile("ws://h/ocpp") == 0
    headers = Endpoints(["ws://h/ocpp"], pattern).headers("CP7")
    assert headers == {"Authorization": "Basic Q1A3OnB3LUNQNy0wMTIzNDU2Nzg5"}  # CP7:pw-CP7-0123456789
    generated = generate_passwords(["A", "B"])
    assert all(len(p) == 32 and bytes.fromhex(p) for p in generated.values())
    assert len(set(generated.values())) == 2


def test_stations_without_client_certificates_share_one_tls_context() -> None:
    endpoints = Endpoints(["wss://h/ocpp"], SecurityOptions(password_pattern="pw-{id}-0123456789"))
    first = endpoints.ssl_for("A", "wss://h/ocpp/A")
    assert first is not None and first is endpoints.ssl_for("B", "wss://h/ocpp/B")
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert endpoints.ssl_for("A", "ws://h/ocpp/A") is None


def test_issued_client_certificates_name_the_station_and_chain_to_the_ca() -> None:
    import trustme

    ca = trustme.CA()
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    ca_key = load_pem_private_key(ca.private_key_pem.bytes(), None)
    cert_pem, _ = issue_client_cert("CP-9", ca_cert, ca_key)  # type: ignore[arg-type]
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CP-9"
    assert cert.issuer == ca_cert.subject
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    cert.verify_directly_issued_by(ca_cert)


def test_failures_are_classified_through_their_cause_chain() -> None:
    def chained(outer: Exception, inner: BaseException) -> Exception:
        outer.__cause__ = inner
        return outer

    assert classify(ConnectionRefusedError()) == "refused"
    assert classify(ssl.SSLCertVerificationError(1, "certificate verify failed")) == "tls_verify"
    assert classify(chained(ValueError("x"), EOFError()), tls=True) == "tls_closed_before_http"
    assert classify(chained(ValueError("x"), EOFError())) == "other:ValueError"
    assert cause_of("tls_alert:tlsv13_alert_certificate_required").name == "client_certificate"
    assert cause_of("tls_alert:tlsv1_alert_protocol_version").name == "tls"
    assert cause_of("http_500").name == "http_other"
    grouped = explain({"http_404": 3, "refused": 5, "timeout": 0}, ["ws://a/ocpp", "ws://b/ocpp"])
    assert [g["cause"] for g in grouped] == ["refused", "unknown_station"]
    assert grouped[0]["hint"] == "is the CSMS running at ws://a/ocpp, ws://b/ocpp?"
    several = explain({"refused@ws://b/ocpp": 2, "http_404@ws://a/ocpp": 1}, ["ws://a/ocpp", "ws://b/ocpp"])
    assert several[0]["hint"] == "is the CSMS running at ws://b/ocpp?"  # only where it was refused
    assert several[1]["cause"] == "unknown_station"


@pytest.mark.parametrize(("extra", "message"), [
    (["--passwords", "{dir}/one.csv"], "the password file has no password for SIM00002"),
    (["--password-pattern", "fixed"], "must contain '{id}'"),
    (["--client-ca-cert", "{dir}/one.csv"], "give both the client CA certificate and its key"),
    (["--client-ca-cert", "{dir}/one.csv", "--client-ca-key", "{dir}/one.csv"], "cannot load the client CA"),
    (["--client-cert-dir", "{dir}"], "no client certificate file"),
    (["--ca-file", "{dir}/missing.pem"], "no CA bundle at"),
])
def test_the_cli_refuses_unusable_security_options_before_connecting(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], message: str
) -> None:
    from simulators.cli import main

    (tmp_path / "one.csv").write_text("SIM00001,password-0123456789\n")
    argv = ["run", "--csms", "ws://127.0.0.1:9/ocpp", "--chargers", "2",
            *(a.replace("{dir}", str(tmp_path)) for a in extra)]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
