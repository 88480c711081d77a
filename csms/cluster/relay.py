"""Link frames over the broker, and the directory of nodes the broker announces.

A ``TopicLink`` is one direction of a link between a gateway and a core (``csms.gateway.link``'s
frames, unchanged), sent as MQTT messages on one topic: the frames queued in one event-loop
iteration leave as one message, so a busy node pays one publish per peer per iteration rather
than one per station message. MQTT keeps the order of one publisher's messages on one topic,
so a station's frames arrive in the order they were sent.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson
import structlog

from csms.gateway.link import MAX_FRAME, frame

log = structlog.get_logger("csms.cluster")

_HEADER = struct.Struct(">IBI")


def split_frames(data: bytes) -> Iterator[tuple[int, int, bytes]]:
    """The frames of one message: (op, connection id, body); stops at a malformed frame."""
    pos, size, unpack = 0, len(data), _HEADER.unpack_from
    while size - pos >= 9:
        length, op, cid = unpack(data, pos)
        end = pos + 4 + length
        if length < 5 or length > MAX_FRAME or end > size:
            log.warning("malformed link message ignored", at=pos, size=size)
            return
        yield op, cid, data[pos + 9:end]
        pos = end


class TopicLink:
    """One end of a link whose frames travel as MQTT messages on ``topic``.

    ``publish(topic, payload) -> bool`` is the node's broker connection; a refused message (the
    broker away) closes the link: what it relayed is gone, its stations reconnect.
    """

    __slots__ = ("_flush_scheduled", "_loop", "_out", "_publish", "closed", "on_closed", "topic", "writable")

    def __init__(self, topic: str, publish: Callable[[str, bytes], bool],
                 on_closed: Callable[[], None] | None = None) -> None:
        self.topic = topic
        self._publish = publish
        self._out: list[bytes] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.closed = False
        self.on_closed = on_closed
        self.writable = asyncio.Event()  # the broker connection queues; flow control is per station
        self.writable.set()

    def send(self, op: int, cid: int, body: bytes) -> None:
        if self.closed:
            return
        self._out.append(frame(op, cid, body))
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if out and not self.closed and not self._publish(self.topic, b"".join(out)):
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()

    def close(self) -> None:
        """Send what is queued (a closing core's last close frames), then refuse more."""
        if not self.closed:
            self.flush()
            self.closed = True
            if self.on_closed is not None:
                self.on_closed()


@dataclass(slots=True)
class NodeInfo:
    node_id: str
    endpoint: str
    role: str
    online: bool
    at: float
    extra: dict[str, object] = field(default_factory=dict)


class NodeDirectory:
    """Every endpoint the broker announced (retained presence), and which are online.

    ``on_offline(info)`` is called once when an online endpoint goes offline (its will, or its
    goodbye)."""

    def __init__(self, on_offline: Callable[[NodeInfo], None] | None = None) -> None:
        self.nodes: dict[str, NodeInfo] = {}
        self.on_offline = on_offline

    def update(self, endpoint: str, payload: bytes) -> NodeInfo | None:
        if not payload:  # a cleared retained message
            self.nodes.pop(endpoint, None)
            return None
        try:
            data = orjson.loads(payload)
            info = NodeInfo(str(data["node_id"]), endpoint, str(data["role"]), bool(data["online"]),
                            float(data.get("at", 0.0)),
                            {k: v for k, v in data.items()
                             if k not in ("node_id", "endpoint", "role", "online", "at")})
        except (ValueError, KeyError, TypeError):
            log.warning("malformed presence ignored", endpoint=endpoint)
            return None
        before = self.nodes.get(endpoint)
        self.nodes[endpoint] = info
        if not info.online and (before is None or before.online) and self.on_offline is not None:
            self.on_offline(info)
        return info

    def online(self, endpoint: str) -> bool:
        info = self.nodes.get(endpoint)
        return info is not None and info.online

    def alive(self, role: str) -> list[NodeInfo]:
        return [n for n in self.nodes.values() if n.online and n.role == role]
