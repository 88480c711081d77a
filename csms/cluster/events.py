"""Events of every core's stations, for the loops that must see them all (``ClusterBus``).

An elected loop (the balancer, the alarm evaluator) runs on one core, but the stations it
watches are spread over every core. Such a loop subscribes through ``ClusterBus``: it gets this
core's events as before, and, on a core node of a cluster, the events of the types it asked for
from every other core, relayed over the broker (``events/{core}`` topics, one message per
event-loop iteration). Everything else keeps subscribing to the local ``Bus``, so a telemetry
writer or a store never handles another core's event twice.

Events are frozen dataclasses: they travel as orjson (dataclasses, datetimes and enums as
orjson writes them) and are rebuilt from their type hints (``decode``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import sys
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson
import structlog

from csms.bus import Bus, Handler
from csms.core import events as domain
from csms.core.events import Event

log = structlog.get_logger("csms.cluster")


def _event_types() -> dict[str, type[Event]]:
    return {cls.__name__: cls for cls in vars(domain).values()
            if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event}


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type) -> dict[str, Any]:
    hints = _HINTS.get(cls)
    if hints is None:
        hints = _HINTS[cls] = typing.get_type_hints(cls, vars(sys.modules[cls.__module__]))
    return hints


def _value(tp: Any, raw: Any) -> Any:
    if raw is None:
        return None
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = [a for a in typing.get_args(tp) if a is not type(None)]
        for option in options:
            try:
                return _value(option, raw)
            except (TypeError, ValueError, KeyError):
                continue
        return raw
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_value(args[0], x) for x in raw)
        return tuple(_value(a, x) for a, x in zip(args, raw, strict=False))
    if origin in (list, set, frozenset):
        (arg,) = typing.get_args(tp) or (Any,)
        return origin(_value(arg, x) for x in raw)
    if origin is dict:
        key_t, val_t = typing.get_args(tp) or (Any, Any)
        return {_value(key_t, k): _value(val_t, v) for k, v in raw.items()}
    if tp is Any or tp is object:
        return raw
    if isinstance(tp, type):
        if dataclasses.is_dataclass(tp):
            return build(tp, raw)
        if issubclass(tp, tuple) and hasattr(tp, "_fields"):  # a NamedTuple: written as an array
            hints = _hints(tp)
            return tp(*(_value(hints[name], x) for name, x in zip(tp._fields, raw, strict=False)))
        if issubclass(tp, enum.Enum):
            return tp(raw)
        if tp is datetime:
            return datetime.fromisoformat(raw)
        if tp is float and isinstance(raw, int):
            return float(raw)
        if tp in (str, int, float, bool) and not isinstance(raw, tp):
            raise TypeError(f"{raw!r} is not {tp.__name__}")
    return raw


def build(cls: type[Any], raw: dict[str, Any]) -> Any:
    """A dataclass instance from what orjson wrote of it."""
    hints = _hints(cls)
    kwargs = {f.name: _value(hints[f.name], raw[f.name])
              for f in dataclasses.fields(cls) if f.init and f.name in raw}
    return cls(**kwargs)


def _plain(value: Any) -> Any:
    """What orjson does not write by itself: NamedTuples (as arrays)."""
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(f"{type(value).__name__} cannot travel between cores")


class EventCodec:
    """Domain events to bytes and back, by class name."""

    def __init__(self) -> None:
        self.types = _event_types()

    def encode(self, events: list[Event]) -> bytes:
        return orjson.dumps([[type(e).__name__, e] for e in events], default=_plain)

    def decode(self, data: bytes) -> list[Event]:
        out: list[Event] = []
        for name, raw in orjson.loads(data):
            cls = self.types.get(name)
            if cls is None:
                continue  # a newer core's event this one does not know
            try:
                out.append(build(cls, raw))
            except (TypeError, ValueError, KeyError) as exc:
                log.warning("relayed event not understood", event=name, error=repr(exc))
        return out


class ClusterBus:
    """Subscriptions that see every core's events (this core's through the local bus)."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self._remote: list[tuple[tuple[type[Event], ...], Handler, Callable[[Event], bool] | None]] = []
        self._relay: Callable[[Event], None] | None = None
        self._relayed: set[type[Event]] = set()

    @property
    def wanted(self) -> tuple[type[Event], ...]:
        """The types some cluster-wide subscriber asked for."""
        return tuple({t for types_, _, _ in self._remote for t in types_})

    def subscribe(
        self, handler: Handler, *types_: type[Event], where: Callable[[Event], bool] | None = None
    ) -> Callable[[], None]:
        """``handler`` gets this core's events of ``types_`` and, relayed, the other cores' ones;
        with ``where``, only the other cores' events it accepts travel (a frequent type of which
        the subscriber needs a few, such as ``StationReported``)."""
        wanted = types_ or (Event,)
        self._remote.append((wanted, handler, where))
        unsubscribe_local = self.bus.subscribe(handler, *types_)
        self._watch()

        def unsubscribe() -> None:
            unsubscribe_local()
            self._remote = [(t, h, w) for t, h, w in self._remote if h is not handler]

        return unsubscribe

    def relay_to(self, publish: Callable[[Event], None]) -> None:
        """Send this core's events of the wanted types to the other cores with ``publish``."""
        self._relay = publish
        self._watch()

    def _watch(self) -> None:
        if self._relay is None:
            return
        new = set(self.wanted) - self._relayed
        if new:
            self._relayed |= new
            self.bus.subscribe(self._offer, *new)

    def _offer(self, event: Event) -> None:
        """Relay this core's ``event`` when a cluster-wide subscriber wants it."""
        if self._relay is None:
            return
        for wanted, _handler, where in self._remote:
            if isinstance(event, wanted) and (where is None or where(event)):
                self._relay(event)
                return

    def deliver(self, event: Event) -> None:
        """An event from another core: to the cluster-wide subscribers of its type."""
        for wanted, handler, where in self._remote:
            if isinstance(event, wanted) and (where is None or where(event)):
                try:
                    handler(event)
                except Exception:
                    log.exception("cluster subscriber failed", event=type(event).__name__)


def subscribe_all(
    events: Bus | ClusterBus, handler: Handler, *types_: type[Event],
    where: Callable[[Event], bool] | None = None,
) -> Callable[[], None]:
    """``events.subscribe`` (``PluginContext.all_events()``), with ``where`` where it applies: the
    other cores' events it refuses do not travel (the local bus gives every event of ``types_``)."""
    if isinstance(events, ClusterBus):
        return events.subscribe(handler, *types_, where=where)
    return events.subscribe(handler, *types_)


class EventRelay:
    """Batches this core's relayed events into one broker message per loop iteration."""

    def __init__(self, publish: Callable[[bytes], bool]) -> None:
        self._publish = publish
        self._codec = EventCodec()
        self._out: list[Event] = []
        self._scheduled = False
        self.dropped = 0

    def offer(self, event: Event) -> None:
        self._out.append(event)
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        out, self._out = self._out, []
        if out and not self._publish(self._codec.encode(out)):
            self.dropped += len(out)

    def receive(self, data: bytes) -> list[Event]:
        try:
            return self._codec.decode(data)
        except ValueError:
            log.warning("malformed event message ignored")
            return []
