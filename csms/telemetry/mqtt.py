"""Domain events as MQTT messages (aiomqtt), and feeder signals from MQTT as domain events.

Published topics (``P`` = ``mqtt.topic_prefix``; every JSON payload has ``event_id``
and ``ts``; see ``docs/telemetry.md``)::

    P/stations/{station}/connection                         retained  connected true/false
    P/stations/{station}/boot                                         vendor, model, firmware
    P/stations/{station}/evse/{evse}/connector/{c}/status   retained  status, error_code
    P/stations/{station}/sessions/started | .../ended                 tx_id, energy_wh ...
    P/stations/{station}/evse/{evse}/meter                            power_w, energy_wh, current_a ...
    P/stations/{station}/security                                     kind, tech_info
    P/feeders/{feeder}/load                                           limit, measured, allocated, headroom
    P/alarms/{kind}/{station}                                         id, state, severity, raised_at ...

Subscribed: ``P/feeders/{feeder}/meter`` (``{"current_a": [L1, L2, L3]}`` or one
number: the node's measured non-EV base load) and ``P/feeders/{feeder}/limit``
(``{"limit_a": 250}``; null clears), republished on the bus as ``FeederMeterReading``
/ ``FeederLimitSignal`` for the balancer (optional ``ts``, ``event_id``).

Delivery: messages wait in an in-memory outbox (``outbox_max``; the oldest is dropped
and counted when full) and leave it only when the broker acknowledged them (QoS ≥ 1),
so a broker outage loses nothing; after a reconnect unacknowledged messages are sent
again: consumers deduplicate on ``event_id``. The outbox does not survive a CSMS crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import ssl
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import orjson
import structlog

from csms.config import MqttConfig
from csms.core.events import (
    AlarmChanged,
    Event,
    FeederLimitSignal,
    FeederLoadChanged,
    FeederMeterReading,
    MeterSampled,
    SecurityEventReported,
    StationBooted,
    StationConnected,
    StationDisconnected,
    StationReported,
    StatusChanged,
    TransactionEnded,
    TransactionStarted,
)
from csms.core.model import Transaction
from csms.errors import ConfigError
from csms.telemetry.influx import Backoff
from csms.telemetry.outputs import PerEvent, table
from ocppj.timestamps import format_datetime, parse_datetime

log = structlog.get_logger("csms.telemetry.mqtt")

@dataclass(frozen=True, slots=True)
class Message:
    """One outbound MQTT message; ``seq`` orders the outbox."""

    seq: int
    topic: str
    payload: bytes
    retain: bool


# --- pure: events -> (topic, payload, retain) ------------------------------------------------

def topic_part(text: str) -> str:
    """A topic level that cannot break the hierarchy (``/``, ``+``, ``#`` become ``_``)."""
    cleaned = "".join("_" if c in "/+#\x00" else c for c in text)
    return cleaned or "_"


def _iso(ts: datetime | None) -> str | None:
    return None if ts is None else format_datetime(ts, timespec="auto")


def _base(ev: Event) -> dict[str, Any]:
    body: dict[str, Any] = {"event_id": ev.event_id, "ts": _iso(ev.ts)}
    if ev.station_id:
        body["station"] = ev.station_id
    return body


def _tx(tx: Transaction) -> dict[str, Any]:
    return {
        "tx_id": tx.tx_id, "evse": tx.evse_id, "connector": tx.connector_id,
        "started_at": _iso(tx.started_at), "stopped_at": _iso(tx.stopped_at),
        "meter_start_wh": tx.meter_start_wh, "meter_stop_wh": tx.meter_stop_wh,
        "energy_wh": tx.energy_wh, "stop_reason": tx.stop_reason, "protocol": tx.protocol.value,
    }


Outbound = tuple[str, dict[str, Any], bool]
"""(topic, JSON body, retain) of one message."""


def _station(ev: Event, prefix: str) -> str:
    return f"{prefix}/stations/{topic_part(ev.station_id)}"


def _connected(ev: StationConnected, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(connected=True, protocol=ev.protocol.value)
    return f"{_station(ev, prefix)}/connection", body, True


def _disconnected(ev: StationDisconnected, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(connected=False, protocol=ev.protocol.value, code=ev.code)
    return f"{_station(ev, prefix)}/connection", body, True


def _booted(ev: StationBooted, prefix: str) -> Outbound:
    body = _base(ev)
    i = ev.info
    body.update(vendor=i.vendor, model=i.model, serial=i.serial_number,
                firmware=i.firmware_version, accepted=ev.accepted)
    return f"{_station(ev, prefix)}/boot", body, False


def _status(ev: StatusChanged, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(evse=ev.evse_id, connector=ev.connector_id, status=ev.status, error_code=ev.error_code)
    return f"{_station(ev, prefix)}/evse/{ev.evse_id}/connector/{ev.connector_id}/status", body, True


def _started(ev: TransactionStarted, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(_tx(ev.transaction))
    return f"{_station(ev, prefix)}/sessions/started", body, False


def _ended(ev: TransactionEnded, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(_tx(ev.transaction))
    return f"{_station(ev, prefix)}/sessions/ended", body, False


def _meter(ev: MeterSampled, prefix: str) -> Outbound:
    body = _base(ev)
    s = ev.sample
    body.update(
        evse=s.evse_id, connector=s.connector_id, sampled_at=_iso(s.ts), tx_id=s.transaction_id,
        power_w=s.power_w, energy_wh=s.energy_wh, current_a=s.current_a, voltage_v=s.voltage_v,
        soc_pct=s.soc_percent,
    )
    return f"{_station(ev, prefix)}/evse/{s.evse_id}/meter", body, False


def _security(ev: SecurityEventReported, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(kind=ev.kind, tech_info=ev.tech_info)
    return f"{_station(ev, prefix)}/security", body, False


def _reported(ev: StationReported, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(id=ev.record_id, type=ev.action, station_time=_iso(ev.station_time), data=ev.data)
    return f"{_station(ev, prefix)}/events/{topic_part(ev.action)}", body, False


def _feeder_load(ev: FeederLoadChanged, prefix: str) -> Outbound:
    ev = ev.rounded()
    body = _base(ev)
    body.update(
        feeder=ev.node_id, parent=ev.parent_id, limit_a=ev.limit_a, measured_a=ev.measured_a,
        allocated_a=ev.allocated_a, headroom_a=ev.headroom_a, meter_stale=ev.meter_stale,
        evses=[{"station": s, "evse": e, "allocated_a": a} for s, e, a in ev.evses],
    )
    return f"{prefix}/feeders/{topic_part(ev.node_id)}/load", body, False


def _alarm(ev: AlarmChanged, prefix: str) -> Outbound:
    body = _base(ev)
    body.update(
        id=ev.alarm_id, kind=ev.kind, charger_id=ev.station_id, state=ev.state, severity=ev.severity,
        detail=ev.detail, raised_at=_iso(ev.raised_at), cleared_at=_iso(ev.cleared_at),
        acknowledged_at=_iso(ev.acknowledged_at), acknowledged_by=ev.acknowledged_by,
    )
    return f"{prefix}/alarms/{topic_part(ev.kind)}/{topic_part(ev.station_id)}", body, False


MQTT: PerEvent[[str], Outbound] = PerEvent(
    station_connected=_connected,
    station_disconnected=_disconnected,
    station_booted=_booted,
    status_changed=_status,
    transaction_started=_started,
    transaction_ended=_ended,
    meter_sampled=_meter,
    security_event_reported=_security,
    message_exchanged=None,
    feeder_load_changed=_feeder_load,
    feeder_limit_signal=None,  # feeder signals came from MQTT: not echoed
    feeder_meter_reading=None,
    station_reported=_reported,
    clock_offset_measured=None,
    command_failed=None,
    alarm_changed=_alarm,
    id_tags_changed=None,
    local_list_synced=None,
    reservation_consumed=None,  # the reservation's own record says it
)
"""The MQTT message of every event kind, given the topic prefix (see ``csms.telemetry.outputs``)."""

_MESSAGES = table(MQTT)
_MESSAGES_NO_METER = {cls: build for cls, build in _MESSAGES.items() if cls is not MeterSampled}

MQTT_EVENTS: tuple[type[Event], ...] = tuple(_MESSAGES)
"""Event types published to MQTT (feeder signals that came from MQTT are not echoed)."""


def event_message(ev: Event, prefix: str, *, meter_summaries: bool = True) -> Outbound | None:
    """(topic, JSON body, retain) for an event, None when it is not published."""
    build = (_MESSAGES if meter_summaries else _MESSAGES_NO_METER).get(type(ev))
    return None if build is None else build(ev, prefix)


# --- pure: inbound feeder messages -> events -------------------------------------------------

def feeder_subscriptions(prefix: str) -> list[str]:
    """The topic filters for external feeder signals."""
    return [f"{prefix}/feeders/+/meter", f"{prefix}/feeders/+/limit"]


def _num(value: Any, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number")
    return float(value)


def _phases(value: Any) -> tuple[float, float, float] | None:
    if value is None:
        return None
    if isinstance(value, list):
        if not 1 <= len(value) <= 3:
            raise ValueError("current_a must have 1 to 3 phases")
        nums = [_num(v, "current_a") or 0.0 for v in value] + [0.0, 0.0]
        return (nums[0], nums[1], nums[2])
    one = _num(value, "current_a")
    return None if one is None else (one, one, one)


def _when(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError("timestamps must be RFC 3339 strings")
    return parse_datetime(value)


UNKNOWN_AGE = datetime(1970, 1, 1, tzinfo=UTC)  # ``ts`` of a reading whose age cannot be known


def parse_feeder_message(prefix: str, topic: str, payload: bytes, *, retained: bool = False) -> Event | None:
    """``FeederMeterReading`` / ``FeederLimitSignal`` from an inbound message; ValueError if malformed.

    A message without ``ts`` is stamped with its arrival, except a *retained* meter reading: the
    broker kept it for an unknown time, so it gets ``UNKNOWN_AGE`` (too old to trust).
    """
    parts = topic.split("/")
    head = prefix.split("/")
    if parts[: len(head)] != head or len(parts) != len(head) + 3 or parts[len(head)] != "feeders":
        return None
    feeder, kind = parts[len(head) + 1], parts[len(head) + 2]
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        raise ValueError("payload is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("payload must be a JSON object")
    stamp = _when(data.get("ts")) or (UNKNOWN_AGE if retained and kind == "meter" else datetime.now(UTC))
    common: dict[str, Any] = {"node_id": feeder, "ts": stamp}
    if isinstance(data.get("event_id"), str) and data["event_id"]:
        common["event_id"] = data["event_id"][:64]
    if kind == "meter":
        current = _phases(data.get("current_a"))
        if current is None:
            raise ValueError("meter reading needs current_a")
        return FeederMeterReading(current_a=current, **common)
    if kind == "limit":
        if "limit_a" not in data:
            raise ValueError("limit signal needs limit_a (null clears it)")
        limit = _num(data["limit_a"], "limit_a")
        if limit is not None and limit < 0:
            raise ValueError("limit_a must not be negative")
        return FeederLimitSignal(limit_a=limit, **common)
    return None


def broker_address(url: str) -> tuple[str, int, bool]:
    """(host, port, TLS) from ``mqtt://host[:1883]`` or ``mqtts://host[:8883]``."""
    parts = urlsplit(url if "://" in url else f"mqtt://{url}")
    if parts.scheme not in ("mqtt", "tcp", "mqtts", "ssl"):
        raise ConfigError(f"mqtt.url {url!r}: expected mqtt://host:port or mqtts://host:port (TLS)")
    if not parts.hostname:
        raise ConfigError(f"mqtt.url {url!r} has no host")
    tls = parts.scheme in ("mqtts", "ssl")
    return parts.hostname, parts.port or (8883 if tls else 1883), tls


def _no_pass_phrase() -> str:
    raise ConfigError("mqtt.key_file is encrypted: give a key without a pass phrase")


def tls_context(cfg: MqttConfig) -> ssl.SSLContext:
    """The client TLS context of ``mqtts://``: the broker's certificate and host name are always
    verified (against ``ca_file``, or the system CAs); ``cert_file`` adds a client certificate."""
    for key in ("ca_file", "cert_file", "key_file"):
        path = getattr(cfg, key)
        if path and not os.path.isfile(path):
            raise ConfigError(f"mqtt.{key} {path!r} is not a file")
    if cfg.key_file and not cfg.cert_file:
        raise ConfigError("mqtt.key_file is set without mqtt.cert_file")
    try:
        ctx = ssl.create_default_context(cafile=cfg.ca_file or None)
    except ssl.SSLError as exc:
        raise ConfigError(f"mqtt.ca_file {cfg.ca_file!r}: not a PEM CA bundle ({exc})") from None
    except OSError as exc:
        raise ConfigError(f"mqtt.ca_file {cfg.ca_file!r}: {exc.strerror or exc}") from None
    if cfg.cert_file:
        try:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file or None, password=_no_pass_phrase)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"mqtt.cert_file/key_file: not a matching PEM certificate and key ({exc})"
            ) from None
        except OSError as exc:
            raise ConfigError(f"mqtt.cert_file/key_file: {exc.strerror or exc}") from None
    return ctx


# --- the publisher --------------------------------------------------------------------------

@dataclass(slots=True)
class MqttStats:
    """Counters of the publisher/subscriber."""

    offered: int = 0
    published: int = 0
    dropped: int = 0
    received: int = 0
    invalid: int = 0
    connects: int = 0
    connected: bool = False
    connect_errors: int = 0  # failed connection attempts (refused, TLS handshake, timeouts)
    last_error: str = ""


class MqttBridge:
    """One connection to the broker: drains the outbox, feeds feeder signals to ``on_event``."""

    def __init__(self, cfg: MqttConfig, on_event: Callable[[Event], None] | None = None) -> None:
        self.cfg = cfg
        self.host, self.port, tls = broker_address(cfg.url)
        if not tls and (cfg.ca_file or cfg.cert_file or cfg.key_file):
            raise ConfigError("mqtt.ca_file / cert_file / key_file need an mqtts:// url")
        self.tls = tls_context(cfg) if tls else None
        self.on_event = on_event
        self.stats = MqttStats()
        self.outbox: deque[Message] = deque()
        self._seq = itertools.count(1)
        self._has_data = asyncio.Event()
        self._drained = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._last_drop_log = 0.0

    # --- producer side ----------------------------------------------------------------------
    def offer_event(self, ev: Event) -> None:
        """Bus callback: queue the event's message (never blocks)."""
        msg = event_message(ev, self.cfg.topic_prefix, meter_summaries=self.cfg.meter_summaries)
        if msg is not None:  # a copy of its own size: orjson's bytes keep a 4 KiB buffer each
            self.offer(msg[0], memoryview(orjson.dumps(msg[1])).tobytes(), retain=msg[2])

    def offer(self, topic: str, payload: bytes, *, retain: bool = False) -> None:
        """Queue one message; when the outbox is full the oldest is dropped and counted."""
        self.stats.offered += 1
        if len(self.outbox) >= self.cfg.outbox_max:
            self.outbox.popleft()
            self.stats.dropped += 1
            now = time.monotonic()
            if now - self._last_drop_log >= 10:
                self._last_drop_log = now
                log.warning("MQTT outbox full; oldest messages dropped", dropped=self.stats.dropped)
        self.outbox.append(Message(next(self._seq), topic, payload, retain))
        self._has_data.set()
        self._drained.clear()

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mqtt")

    async def close(self, timeout_s: float = 3.0) -> None:
        """Give a connected bridge ``timeout_s`` to drain the outbox, then stop."""
        if self.outbox and self.stats.connected:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout_s)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.outbox:
            log.warning("MQTT messages not delivered at shutdown", count=len(self.outbox))

    async def _run(self) -> None:
        backoff = Backoff(0.2, self.cfg.reconnect_max_s)
        quiet = False  # log the first failure of an outage only
        while True:
            connects = self.stats.connects
            try:
                await self._session()
            except* (aiomqtt.MqttError, OSError) as group:
                if self.stats.connects == connects:
                    self.stats.connect_errors += 1
                self.stats.last_error = str(group.exceptions[0])
                if self.stats.connects > connects:
                    backoff.reset()
                    quiet = False
                if not quiet:
                    log.warning("MQTT broker unreachable; buffering in the outbox",
                                error=str(group.exceptions[0]), outbox=len(self.outbox))
                    quiet = True
            self.stats.connected = False
            await asyncio.sleep(backoff.delay())

    async def _session(self) -> None:
        cfg = self.cfg
        async with aiomqtt.Client(
            self.host, self.port, username=cfg.username or None, password=cfg.password or None,
            identifier=cfg.client_id or None, keepalive=cfg.keepalive_s, timeout=cfg.timeout_s,
            tls_context=self.tls,
        ) as client:
            client.pending_calls_threshold = max(client.pending_calls_threshold, cfg.inflight + 2)
            self.stats.connects += 1
            self.stats.connected = True
            log.info("MQTT connected", broker=f"{self.host}:{self.port}", tls=self.tls is not None,
                     outbox=len(self.outbox))
            if cfg.subscribe_feeders:
                for flt in feeder_subscriptions(cfg.topic_prefix):
                    await client.subscribe(flt, qos=cfg.qos)
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._publish_loop(client))
                tg.create_task(self._receive_loop(client))

    async def _publish_loop(self, client: aiomqtt.Client) -> None:
        while True:
            if not self.outbox:
                self._has_data.clear()
                await self._has_data.wait()
                continue
            window = list(itertools.islice(self.outbox, self.cfg.inflight))
            results = await asyncio.gather(
                *(client.publish(m.topic, m.payload, qos=self.cfg.qos, retain=m.retain,
                                 timeout=self.cfg.timeout_s) for m in window),
                return_exceptions=True,
            )
            errors = [r for r in results if isinstance(r, BaseException)]
            if errors:
                raise errors[0]
            last = window[-1].seq
            while self.outbox and self.outbox[0].seq <= last:
                self.outbox.popleft()
            self.stats.published += len(window)
            if not self.outbox:
                self._drained.set()

    async def _receive_loop(self, client: aiomqtt.Client) -> None:
        async for message in client.messages:
            self.stats.received += 1
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            try:
                ev = parse_feeder_message(
                    self.cfg.topic_prefix, str(message.topic), payload, retained=message.retain
                )
            except ValueError as exc:
                self.stats.invalid += 1
                log.warning("invalid feeder message ignored", topic=str(message.topic), error=str(exc))
                continue
            if ev is not None and self.on_event is not None:
                self.on_event(ev)
