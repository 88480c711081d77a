"""Local authorization lists as plain data and pure rules.

A *policy* says which id tags the stations of a group get (every tag, or one tag group's); the
default policy covers stations no group policy names. ``desired`` turns the registry into the
entries a station should hold; ``plan`` compares them with what the station last accepted and
returns the ``SendLocalList`` messages that get it there:

- a **Full** update the first time, after a failure or a version mismatch, when forced, or when
  the changes are a large share of the list;
- else a **Differential** one with only the additions, updates and removals;
- either way chunked to the station's items per message: the first chunk of a Full update is
  Full, the rest Differential; each message raises the version by one, so a station that applied
  part of an update reports a version the CSMS recorded.
"""

from __future__ import annotations

import enum
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from csms.core.model import AuthStatus, IdTag

DEFAULT_SCOPE = ""
"""The scope of the default policy (every station no group policy names)."""


class UpdateType(enum.StrEnum):
    FULL = "Full"
    DIFFERENTIAL = "Differential"


class SendStatus(enum.StrEnum):
    """A station's answer to SendLocalList (the same in 1.6 and 2.0.1)."""

    ACCEPTED = "Accepted"
    FAILED = "Failed"
    NOT_SUPPORTED = "NotSupported"
    VERSION_MISMATCH = "VersionMismatch"


@dataclass(frozen=True, slots=True)
class Policy:
    """Which id tags the stations of ``scope`` (a station group; ``""``: every station) get."""

    scope: str
    tag_group: str | None  # None: every id tag
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Selection:
    """The id tags one station gets: every tag, or those of ``tag_groups``."""

    every_tag: bool
    tag_groups: frozenset[str] = frozenset()

    def takes(self, tag_group: str | None) -> bool:
        return self.every_tag or (tag_group is not None and tag_group in self.tag_groups)


def selection(policies: Mapping[str, Policy], station_groups: Sequence[str]) -> Selection | None:
    """What a station in ``station_groups`` gets: the union of its groups' policies, else the
    default policy; None when no policy covers it (its list is not managed)."""
    chosen = [policies[g] for g in station_groups if g in policies and g != DEFAULT_SCOPE]
    if not chosen and DEFAULT_SCOPE in policies:
        chosen = [policies[DEFAULT_SCOPE]]
    if not chosen:
        return None
    if any(p.tag_group is None for p in chosen):
        return Selection(True)
    return Selection(False, frozenset(p.tag_group for p in chosen if p.tag_group is not None))


@dataclass(frozen=True, slots=True)
class Entry:
    """One local list entry: an id tag and what the station should answer for it offline."""

    id_tag: str
    status: AuthStatus
    expiry: datetime | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Change:
    """One item of a SendLocalList: ``entry`` None removes ``id_tag`` (Differential only)."""

    id_tag: str
    entry: Entry | None


@dataclass(frozen=True, slots=True)
class Message:
    update_type: UpdateType
    version: int
    changes: tuple[Change, ...]


@dataclass(frozen=True, slots=True)
class Limits:
    """What one station takes: items per SendLocalList, list size (None: not said), id length."""

    items_per_message: int
    max_entries: int | None = None
    id_max_length: int = 20


@dataclass(frozen=True, slots=True)
class Known:
    """What the CSMS recorded of a station's list: the version and entries it accepted last."""

    version: int
    entries: Mapping[str, Entry]
    in_sync: bool


@dataclass(frozen=True, slots=True)
class Plan:
    messages: tuple[Message, ...]
    reason: str  # up_to_date, first, not_in_sync, version_mismatch, forced, large_change, changes

    @property
    def update_type(self) -> UpdateType | None:
        return self.messages[0].update_type if self.messages else None

    @property
    def items(self) -> int:
        return sum(len(m.changes) for m in self.messages)


class ListTooLong(ValueError):
    """The desired list has more entries than the station holds."""


def desired(tags: Iterable[tuple[IdTag, str | None]], chosen: Selection, limits: Limits) -> dict[str, Entry]:
    """The entries a station should hold: the registry's ``(tag, tag group)`` pairs ``chosen``
    takes, without ids (and parents) longer than the station's protocol carries."""
    out: dict[str, Entry] = {}
    n = limits.id_max_length
    for tag, group in tags:
        if not chosen.takes(group) or len(tag.id_tag) > n:
            continue
        parent = tag.parent if tag.parent is not None and len(tag.parent) <= n else None
        out[tag.id_tag] = Entry(tag.id_tag, tag.status, tag.expiry, parent)
    return out


def digest(entries: Mapping[str, Entry]) -> str:
    """A fingerprint of a list: equal lists have equal digests, whatever their order."""
    h = hashlib.sha256()
    for key in sorted(entries):
        e = entries[key]
        h.update(f"{e.id_tag}\x1f{e.status.value}\x1f{e.expiry.isoformat() if e.expiry else ''}\x1f"
                 f"{e.parent or ''}\x1e".encode())
    return h.hexdigest()


def current(
    version: int, in_sync: bool, recorded: str | None, wanted: str, *, station_version: int | None = None,
    force_full: bool = False,
) -> bool:
    """Whether a station is current without reading its entries: in sync at the recorded
    ``version`` (the one it reports, if asked) with a list of the ``wanted`` digest."""
    return (not force_full and in_sync and recorded == wanted
            and (station_version is None or station_version == version))


def diff(have: Mapping[str, Entry], want: Mapping[str, Entry]) -> list[Change]:
    """Additions, updates and removals from ``have`` to ``want``, by id tag."""
    changes = [Change(k, e) for k, e in want.items() if have.get(k) != e]
    changes += [Change(k, None) for k in have if k not in want]
    return sorted(changes, key=lambda c: c.id_tag)


def _chunks(changes: Sequence[Change], size: int) -> list[tuple[Change, ...]]:
    return [tuple(changes[i:i + size]) for i in range(0, len(changes), size)] or [()]


def plan(
    known: Known | None, want: Mapping[str, Entry], limits: Limits, *, station_version: int | None = None,
    full_ratio: float = 0.5, force_full: bool = False,
) -> Plan:
    """The messages that bring a station from ``known`` (and the ``station_version`` it reported,
    if asked) to ``want``; raises ``ListTooLong`` when ``want`` does not fit the station."""
    if limits.max_entries is not None and len(want) > limits.max_entries:
        raise ListTooLong(f"{len(want)} entries, the station holds at most {limits.max_entries}")
    base = max(known.version if known else 0, station_version or 0)
    reason = ""
    if force_full:
        reason = "forced"
    elif known is None:
        reason = "first"
    elif station_version is not None and station_version != known.version:
        reason = "version_mismatch"
    elif not known.in_sync:
        reason = "not_in_sync"
    if not reason and known is not None:
        changes = diff(known.entries, want)
        if not changes:
            return Plan((), "up_to_date")
        if len(changes) <= full_ratio * max(len(want), 1):
            chunks = _chunks(changes, limits.items_per_message)
            return Plan(tuple(
                Message(UpdateType.DIFFERENTIAL, base + i, chunk) for i, chunk in enumerate(chunks, start=1)
            ), "changes")
        reason = "large_change"
    items = [Change(k, want[k]) for k in sorted(want)]
    chunks = _chunks(items, limits.items_per_message)
    return Plan(tuple(
        Message(UpdateType.FULL if i == 1 else UpdateType.DIFFERENTIAL, base + i, chunk)
        for i, chunk in enumerate(chunks, start=1)
    ), reason)


def apply(entries: Mapping[str, Entry], message: Message) -> dict[str, Entry]:
    """The list after a station accepted ``message``."""
    out = {} if message.update_type is UpdateType.FULL else dict(entries)
    for change in message.changes:
        if change.entry is None:
            out.pop(change.id_tag, None)
        else:
            out[change.id_tag] = change.entry
    return out


@dataclass(frozen=True, slots=True)
class Debounce:
    """Quiet-period debouncing of id-tag changes: due ``quiet_s`` after the last change, or
    ``max_delay_s`` after the first of a steady stream."""

    quiet_s: float
    max_delay_s: float
    first: datetime | None = None
    last: datetime | None = None

    def changed(self, now: datetime) -> Debounce:
        return Debounce(self.quiet_s, self.max_delay_s, self.first or now, now)

    def due(self, now: datetime) -> bool:
        if self.first is None or self.last is None:
            return False
        return ((now - self.last).total_seconds() >= self.quiet_s
                or (now - self.first).total_seconds() >= self.max_delay_s)

    def reset(self) -> Debounce:
        return Debounce(self.quiet_s, self.max_delay_s)
