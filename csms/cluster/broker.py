"""One node's connection to the MQTT v5 broker that links gateway and core nodes.

Every node (gateway or core) keeps one connection: it subscribes to its own topics, announces
itself with a retained presence message and leaves a retained last will that marks it offline
when the broker loses it (a ``kill -9``, a cut cable: the broker notices within 1.5 keepalives).
The connection is retried forever; ``on_up`` runs after each (re)connection and subscription,
``on_down`` after each loss. Publishing never blocks: while the broker is away a message is
refused (``publish`` returns False) and the caller decides what that means (a gateway closes its
stations, which reconnect; a core fails the call).

Broker features relied on (Mosquitto 2, EMQX, VerneMQ and HiveMQ have them all): MQTT v5,
shared subscriptions (``$share/GROUP/...``: each new station goes to one core), retained
messages and last will (presence), response topic and correlation data (calls between cores).
Sessions start clean (no session expiry): a node that lost the broker drops what it relayed
and the stations reconnect, so nothing waits in the broker for a node that may not return.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import aiomqtt
import orjson
import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from csms.errors import ConfigError

log = structlog.get_logger("csms.cluster")

OnMessage = Callable[[str, bytes, Any], None]


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    host: str
    port: int
    username: str | None = None
    password: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """``mqtt://[user[:password]@]host[:port]`` (1883), ``mqtts://`` (8883, TLS)."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts") or not parts.hostname:
            raise ConfigError(f"bus URL {url!r}: expected mqtt://host:port or mqtts://host:port")
        tls = parts.scheme == "mqtts"
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError:
            raise ConfigError(f"bus URL {url!r}: bad port") from None
        return cls(parts.hostname, port, unquote(parts.username) if parts.username else None,
                   unquote(parts.password) if parts.password else None, tls)


@dataclass(frozen=True, slots=True)
class Topics:
    """Every topic the cluster uses, under one prefix. An *endpoint* is one running node:
    ``node_id.token``, the token new at each start, so a restarted node is never mistaken for
    the one that died (its connections' ids start over)."""

    prefix: str = "csms"

    def open(self, gateway: str) -> str:
        """gateway -> any one core: new stations (a shared subscription)."""
        return f"{self.prefix}/open/{gateway}"

    def open_shared(self) -> str:
        return f"$share/{self.prefix}-cores/{self.prefix}/open/+"

    def to_core(self, core: str, gateway: str) -> str:
        """gateway -> the core serving the station: its frames."""
        return f"{self.prefix}/to-core/{core}/{gateway}"

    def to_gateway(self, gateway: str, core: str) -> str:
        """core -> the gateway holding the station."""
        return f"{self.prefix}/to-gw/{gateway}/{core}"

    def node(self, endpoint: str) -> str:
        """Retained presence of one endpoint."""
        return f"{self.prefix}/node/{endpoint}"

    def nodes(self) -> str:
        return f"{self.prefix}/node/+"

    def rpc(self, core: str) -> str:
        """Calls for stations a core serves, from other cores."""
        return f"{self.prefix}/rpc/{core}"

    def reply(self, core: str) -> str:
        return f"{self.prefix}/reply/{core}"

    def events(self, core: str) -> str:
        """Events of a core's stations that the elected loops of another core need."""
        return f"{self.prefix}/events/{core}"

    def all_events(self) -> str:
        return f"{self.prefix}/events/+"

    @staticmethod
    def last(topic: str) -> str:
        return topic.rsplit("/", 1)[-1]


def new_endpoint(node_id: str) -> str:
    return f"{node_id}.{secrets.token_hex(3)}"


def node_of(endpoint: str) -> str:
    return endpoint.rsplit(".", 1)[0]


def presence(role: str, endpoint: str, online: bool, **extra: Any) -> bytes:
    return orjson.dumps({"node_id": node_of(endpoint), "endpoint": endpoint, "role": role,
                         "online": online, "at": time.time(), **extra})


def reply_properties(response_topic: str, correlation: bytes) -> Properties:
    props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    props.ResponseTopic = response_topic
    props.CorrelationData = correlation
    return props


class BrokerClient:
    """A node's broker connection: subscribe, announce, relay, reconnect."""

    def __init__(
        self, url: BrokerUrl, *, endpoint: str, role: str, topics: Topics, subscriptions: list[str],
        on_message: OnMessage, on_up: Callable[[], None], on_down: Callable[[Exception | None], None],
        qos: int = 1, keepalive_s: int = 5,
    ) -> None:
        self.url = url
        self.endpoint = endpoint
        self.role = role
        self.topics = topics
        self.subscriptions = subscriptions
        self.on_message = on_message
        self.on_up = on_up
        self.on_down = on_down
        self.qos = qos
        self.keepalive_s = keepalive_s
        self.connected = asyncio.Event()
        self._client: aiomqtt.Client | None = None
        self.published = 0
        self.refused = 0
        self.received = 0
        self.connects = 0
        self.bad_messages = 0

    def _make(self) -> aiomqtt.Client:
        will = aiomqtt.Will(self.topics.node(self.endpoint), presence(self.role, self.endpoint, False),
                            qos=1, retain=True)
        return aiomqtt.Client(
            self.url.host, self.url.port, username=self.url.username, password=self.url.password,
            identifier=self.endpoint, protocol=aiomqtt.ProtocolVersion.V5, will=will,
            keepalive=self.keepalive_s, timeout=max(5.0, float(self.keepalive_s)),
            tls_params=aiomqtt.TLSParameters() if self.url.tls else None,
            max_queued_outgoing_messages=200_000, max_inflight_messages=1000,
        )

    async def run(self) -> None:
        """Stay connected until cancelled."""
        delay = 0.2
        while True:
            lost: Exception | None = None
            up = False
            try:
                async with self._make() as client:
                    for topic in self.subscriptions:
                        await client.subscribe(topic, qos=self.qos)
                    self._client = client
                    up = True
                    self.connects += 1
                    delay = 0.2
                    self.connected.set()
                    self.publish(self.topics.node(self.endpoint), presence(self.role, self.endpoint, True),
                                 qos=1, retain=True)
                    log.info("broker connected", broker=f"{self.url.host}:{self.url.port}",
                             endpoint=self.endpoint)
                    self._guarded(self.on_up)
                    async for message in client.messages:
                        self.received += 1
                        payload = message.payload
                        data = payload if isinstance(payload, bytes) else (
                            payload.encode() if isinstance(payload, str) else bytes(payload or b""))
                        self._guarded(self.on_message, message.topic.value, data, message.properties)
            except aiomqtt.MqttError as exc:
                lost = exc
            except Exception as exc:  # a bug of ours: log it, reconnect, never stop relaying
                log.exception("broker connection failed", endpoint=self.endpoint)
                lost = exc
            finally:
                self._client = None
                self.connected.clear()
                if up:
                    log.warning("broker connection lost", endpoint=self.endpoint, error=str(lost))
                    self.on_down(lost)
            if not up:
                log.info("broker not reachable yet", broker=f"{self.url.host}:{self.url.port}",
                         error=str(lost))
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _client_now(self) -> aiomqtt.Client | None:
        """The live connection, if any (for a one-off subscription change)."""
        return self._client

    def _guarded(self, step: Callable[..., None], *args: Any) -> None:
        """One message's handling: a malformed message (or a bug) costs that message, never the
        connection (which would leave this node announced online and deaf)."""
        try:
            step(*args)
        except Exception:
            self.bad_messages += 1
            log.exception("broker message not handled", endpoint=self.endpoint,
                          topic=str(args[0]) if args else None)

    def publish(
        self, topic: str, payload: bytes, *, qos: int | None = None, retain: bool = False,
        properties: Properties | None = None,
    ) -> bool:
        """Hand a message to the connection, in order; False while the broker is away."""
        client = self._client
        if client is None:
            self.refused += 1
            return False
        # paho's publish queues the packet at once (in call order) and the connection's own loop
        # writes it; aiomqtt's ``publish`` coroutine would only add a task per message to wait for
        # the broker's acknowledgement, which nothing here needs (a lost connection drops the
        # stations relayed over it, and OCPP answers are the end-to-end acknowledgement).
        info = client._client.publish(topic, payload, self.qos if qos is None else qos, retain, properties)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            self.refused += 1
            if info.rc != mqtt.MQTT_ERR_NO_CONN:  # e.g. the outgoing queue is full: start over cleanly
                log.error("broker refused a message; reconnecting", endpoint=self.endpoint,
                          error=mqtt.error_string(info.rc))
                client._client.disconnect()
            return False
        self.published += 1
        return True

    async def close(self, *, goodbye: bool = True) -> None:
        """Say offline (retained) before leaving, so nobody waits for the will."""
        client = self._client
        if client is not None and goodbye:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.publish(
                    self.topics.node(self.endpoint), presence(self.role, self.endpoint, False),
                    qos=1, retain=True), 2.0)
