"""MQTT over TLS (``mqtts://``) against a private Mosquitto that requires client certificates."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiomqtt
import orjson
import pytest
import trustme
from cryptography.hazmat.primitives import serialization
from ocpp_driver import drive_v16, wait_until
from servers import MosquittoServer

from csms.app import running
from csms.config import MqttConfig
from csms.core.events import StatusChanged
from csms.errors import ConfigError
from csms.telemetry.mqtt import MqttBridge
from csms.telemetry.plugin import mqtt_plugin
from tests.conftest import make_settings


@dataclass(frozen=True)
class Pki:
    ca: Path  # the CA that signed the broker's and the clients' certificates
    client_cert: Path  # certificate + key of a client the broker accepts
    client_key: Path
    other_ca: Path  # a CA that signed nothing here


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1")
    client = ca.issue_cert("csms-client")
    d = tmp_path / "pki"
    d.mkdir()
    ca.cert_pem.write_to_path(str(d / "ca.pem"))
    ca.private_key_pem.write_to_path(str(d / "ca.key"))
    other.cert_pem.write_to_path(str(d / "other-ca.pem"))
    server.private_key_pem.write_to_path(str(d / "server.key"))
    server.cert_chain_pems[0].write_to_path(str(d / "server.pem"))
    client.private_key_pem.write_to_path(str(d / "client.key"))
    client.cert_chain_pems[0].write_to_path(str(d / "client.pem"))
    return Pki(d / "ca.pem", d / "client.pem", d / "client.key", d / "other-ca.pem")


@pytest.fixture
def tls_broker(tmp_path: Path, pki: Pki) -> Iterator[MosquittoServer]:
    (tmp_path / "mqtts").mkdir()
    d = pki.ca.parent
    server = MosquittoServer(tmp_path / "mqtts", tls={
        "cafile": str(pki.ca), "certfile": str(d / "server.pem"), "keyfile": str(d / "server.key"),
        "require_certificate": "true",
    })
    server.start()
    yield server
    server.stop()


def client_context(pki: Pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    ctx.load_cert_chain(str(pki.client_cert), str(pki.client_key))
    return ctx


async def test_csms_publishes_over_tls_with_a_client_certificate(
    tls_broker: MosquittoServer, pki: Pki, tmp_path: Path
) -> None:
    received: list[tuple[str, dict[str, object]]] = []
    subscribed = asyncio.Event()

    async def subscriber() -> None:
        async with aiomqtt.Client("127.0.0.1", tls_broker.port, tls_context=client_context(pki)) as client:
            await client.subscribe("tls/#", qos=1)
            subscribed.set()
            async for m in client.messages:
                assert isinstance(m.payload, bytes)
                received.append((str(m.topic), orjson.loads(m.payload)))

    task = asyncio.create_task(subscriber())
    try:
        await asyncio.wait_for(subscribed.wait(), 10)
        settings = make_settings(tmp_path, mqtt={
            "url": tls_broker.url, "topic_prefix": "tls", "ca_file": str(pki.ca),
            "cert_file": str(pki.client_cert), "key_file": str(pki.client_key),
        })
        async with running(settings, plugins=[mqtt_plugin]) as app:
            await drive_v16(app.ocpp_url, "CP-TLS", samples=1)
            await wait_until(lambda: any(t.endswith("/sessions/ended") for t, _ in received))
            assert app.parts.mqtt.stats.connects == 1
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    ended = next(b for t, b in received if t == "tls/stations/CP-TLS/sessions/ended")
    assert ended["station"] == "CP-TLS"


@pytest.mark.parametrize("case", ["untrusted broker", "wrong host name", "no client certificate"])
async def test_a_tls_handshake_that_fails_keeps_the_events(
    tls_broker: MosquittoServer, pki: Pki, tmp_path: Path, case: str
) -> None:
    broker = tls_broker
    client = {"cert_file": str(pki.client_cert), "key_file": str(pki.client_key)}
    expected = "certificate verify failed"
    with contextlib.ExitStack() as stack:
        if case == "untrusted broker":  # the broker's certificate is not from the CA we trust
            cfg = MqttConfig(url=broker.url, ca_file=str(pki.other_ca), **client)
        elif case == "wrong host name":  # a certificate from our CA, but for another host
            broker = stack.enter_context(_broker_with_cert_for("wrong.example", pki, tmp_path))
            cfg = MqttConfig(url=broker.url, ca_file=str(pki.ca), **client)
            expected = "IP address mismatch"
        else:  # the broker requires a client certificate
            cfg = MqttConfig(url=broker.url, ca_file=str(pki.ca))
            expected = ""  # the broker ends the handshake; the error text depends on the OpenSSL version
        bridge = MqttBridge(cfg.model_copy(update={"reconnect_max_s": 0.2, "timeout_s": 2}))
        bridge.start()
        try:
            bridge.offer_event(StatusChanged(station_id="CP1", evse_id=1, connector_id=1, status="Charging"))
            await wait_until(lambda: bridge.stats.connect_errors >= 2)  # it tried, and tries again
            assert expected in bridge.stats.last_error
            assert bridge.stats.published == 0 and len(bridge.outbox) == 1  # kept for when it works
            assert bridge.stats.connects == 0 and not bridge.stats.connected
        finally:
            await bridge.close()


@contextlib.contextmanager
def _broker_with_cert_for(host: str, pki: Pki, tmp_path: Path) -> Iterator[MosquittoServer]:
    ca = trustme.CA.from_pem(pki.ca.read_bytes(), (pki.ca.parent / "ca.key").read_bytes())
    cert = ca.issue_cert(host)
    root = tmp_path / f"mqtts-{host}"
    root.mkdir()
    cert.private_key_pem.write_to_path(str(root / "server.key"))
    cert.cert_chain_pems[0].write_to_path(str(root / "server.pem"))
    server = MosquittoServer(root, tls={"cafile": str(pki.ca), "certfile": str(root / "server.pem"),
                                        "keyfile": str(root / "server.key")})
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_tls_settings_are_checked_before_connecting(pki: Pki, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"mqtt\.ca_file '.*missing\.pem' is not a file"):
        MqttBridge(MqttConfig(url="mqtts://127.0.0.1", ca_file=str(tmp_path / "missing.pem")))
    with pytest.raises(ConfigError, match="need an mqtts:// url"):
        MqttBridge(MqttConfig(url="mqtt://127.0.0.1", ca_file=str(pki.ca)))
    with pytest.raises(ConfigError, match=r"key_file is set without mqtt\.cert_file"):
        MqttBridge(MqttConfig(url="mqtts://127.0.0.1", key_file=str(pki.client_key)))
    with pytest.raises(ConfigError, match="not a matching PEM certificate and key"):
        MqttBridge(MqttConfig(url="mqtts://127.0.0.1", cert_file=str(pki.client_cert), key_file=str(pki.ca)))
    with pytest.raises(ConfigError, match="not a PEM CA bundle"):
        MqttBridge(MqttConfig(url="mqtts://127.0.0.1", ca_file=str(pki.client_key)))
    key = serialization.load_pem_private_key(pki.client_key.read_bytes(), None)
    encrypted = tmp_path / "encrypted.key"
    encrypted.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(b"secret")))
    with pytest.raises(ConfigError, match="key_file is encrypted"):  # never a pass phrase prompt
        MqttBridge(MqttConfig(url="mqtts://127.0.0.1", cert_file=str(pki.client_cert),
                              key_file=str(encrypted)))
