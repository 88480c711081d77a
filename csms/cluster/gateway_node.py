"""A gateway node's link to the core nodes over the broker (``csms gateway --bus``).

The gateway (``csms.gateway.process.Gateway``) is unchanged: it sees one ``Link``. This one
routes by frame: a new station's ``OPEN`` goes to the shared ``open`` topic, so exactly one
core (the broker picks) decides it; that core's ``ACCEPT`` binds the station to it, and every
later frame of the station goes to that core's topic. When a core goes offline (its will) the
gateway closes the stations it served with 1011, and they reconnect to a core that is alive;
when the broker goes away the gateway closes them all and refuses new ones (503) until it is
back. With no core online a new station is refused at once (503) instead of waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Any

import orjson
import structlog

from csms.cluster.broker import BrokerClient, BrokerUrl, Topics, new_endpoint
from csms.cluster.relay import NodeDirectory, NodeInfo, TopicLink, split_frames
from csms.gateway.link import Op, frame

if TYPE_CHECKING:
    from csms.gateway.process import Gateway

log = structlog.get_logger("csms.cluster")

_NO_CORE = orjson.dumps({"status": 503, "text": "No CSMS core available, retry later\n",
                         "headers": {"Retry-After": "5"}})


class BrokerGatewayLink:
    """What ``Gateway`` sends through: frames routed to the core that serves each station."""

    def __init__(self, gateway: Gateway, endpoint: str, topics: Topics, publish: Any,
                 directory: NodeDirectory) -> None:
        self.gateway = gateway
        self.endpoint = endpoint
        self.topics = topics
        self._publish = publish
        self.directory = directory
        self.closed = False
        self.writable = asyncio.Event()
        self.writable.set()
        self.bound: dict[int, str] = {}  # connection id -> the core endpoint serving it
        self._by_core: dict[str, set[int]] = {}
        self._opens = TopicLink(topics.open(endpoint), publish, self._lost)
        self._cores: dict[str, TopicLink] = {}
        self._loop = asyncio.get_running_loop()

    def _to(self, core: str) -> TopicLink:
        link = self._cores.get(core)
        if link is None:
            link = self._cores[core] = TopicLink(self.topics.to_core(core, self.endpoint), self._publish,
                                                 self._lost)
        return link

    def _lost(self) -> None:
        """A publish was refused: the broker is away (``on_down`` follows)."""
        self.closed = True

    # --- gateway -> cores ---------------------------------------------------------------------
    def send(self, op: int, cid: int, body: bytes) -> None:
        if self.closed:
            return
        if op == Op.OPEN:
            if not self.directory.alive("core"):
                self._loop.call_soon(self.gateway.on_core_frame, Op.REFUSE, cid, _NO_CORE)
                return
            # one message per new station (not batched): the broker hands each to the next core
            # of the shared subscription, so a reconnect burst spreads over the cores
            if not self._publish(self._opens.topic, frame(op, cid, body)):
                self._lost()
            return
        core = self.bound.get(cid)
        if core is None:
            return  # still being decided (the core hears of it when it accepts) or its core is gone
        self._to(core).send(op, cid, body)
        if op == Op.CLOSED:
            self._unbind(cid)

    def _unbind(self, cid: int) -> None:
        core = self.bound.pop(cid, None)
        if core is not None:
            cids = self._by_core.get(core)
            if cids is not None:
                cids.discard(cid)

    # --- cores -> gateway ---------------------------------------------------------------------
    def on_message(self, core: str, data: bytes) -> None:
        gw = self.gateway
        for op, cid, body in split_frames(data):
            if op == Op.ACCEPT:
                if cid in gw._opening and self.directory.online(core):
                    self.bound[cid] = core
                    self._by_core.setdefault(core, set()).add(cid)
                    gw.on_core_frame(op, cid, body)
                else:  # the station left while the core decided (or the core is gone): tell it
                    self._to(core).send(Op.CLOSED, cid, orjson.dumps([1006, "station left"]))
            elif op == Op.REFUSE or self.bound.get(cid) == core:
                gw.on_core_frame(op, cid, body)

    def core_gone(self, info: NodeInfo) -> None:
        """Close the stations ``info``'s core served (1011): they reconnect to a live core."""
        self._cores.pop(info.endpoint, None)
        cids = self._by_core.pop(info.endpoint, set())
        for cid in cids:
            self.bound.pop(cid, None)
            st = self.gateway._stations.get(cid)
            if st is not None:
                self.gateway._guarded(st, st.start_close, 1011, "CSMS core unavailable")
        if cids:
            log.warning("core gone; its stations closed", core=info.endpoint, stations=len(cids))

    def stations_of(self) -> dict[str, int]:
        return {core: len(cids) for core, cids in self._by_core.items() if cids}

    def close(self) -> None:
        for link in (self._opens, *self._cores.values()):
            link.flush()
        self.closed = True


class BrokerGatewayNode:
    """Keeps a gateway linked to the core nodes through the broker, relinking after each loss."""

    def __init__(self, gateway: Gateway, url: BrokerUrl, *, node_id: str, topics: Topics, qos: int = 1,
                 keepalive_s: int = 5) -> None:
        self.gateway = gateway
        self.endpoint = new_endpoint(node_id)
        self.topics = topics
        self.directory = NodeDirectory(on_offline=self._offline)
        self.link: BrokerGatewayLink | None = None
        self._prefix = topics.to_gateway(self.endpoint, "")
        self._node_prefix = topics.node("")
        self.client = BrokerClient(
            url, endpoint=self.endpoint, role="gateway", topics=topics,
            subscriptions=[topics.to_gateway(self.endpoint, "+"), topics.nodes()],
            on_message=self._on_message, on_up=self._up, on_down=self._down, qos=qos, keepalive_s=keepalive_s,
        )
        self._task: asyncio.Task[None] | None = None

    def _publish(self, topic: str, payload: bytes) -> bool:
        return self.client.publish(topic, payload)

    def _up(self) -> None:
        self.link = BrokerGatewayLink(self.gateway, self.endpoint, self.topics, self._publish, self.directory)
        self.gateway.attach(self.link)

    def _down(self, exc: Exception | None) -> None:
        if self.link is not None:
            self.link.closed = True
            self.link = None
        self.gateway.on_core_lost(exc)

    def _offline(self, info: NodeInfo) -> None:
        if info.role == "core" and self.link is not None:
            self.link.core_gone(info)

    def _on_message(self, topic: str, data: bytes, _props: Any) -> None:
        if topic.startswith(self._prefix):
            if self.link is not None:
                self.link.on_message(topic[len(self._prefix):], data)
        elif topic.startswith(self._node_prefix):
            self.directory.update(topic[len(self._node_prefix):], data)

    async def connect(self) -> None:
        """Start the broker connection and wait for the first link (as long as it takes)."""
        if self._task is None:
            self._task = asyncio.create_task(self.client.run(), name="broker")
        await self.client.connected.wait()

    async def run(self) -> None:
        """Relay until cancelled (the broker connection retries by itself)."""
        assert self._task is not None
        await asyncio.shield(self._task)

    async def close(self) -> None:
        await self.client.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
