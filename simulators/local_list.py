"""The virtual charger's local authorization list: versioned, updated Full or Differential by
SendLocalList, reported by GetLocalListVersion, and used to authorize while the CSMS is out of reach.

Configuration, read from the charger's settings (``Settings.extra``, so ChangeConfiguration /
SetVariables change it), 1.6 key / 2.0.1 component/variable:

- ``LocalAuthListEnabled`` / ``LocalAuthListCtrlr/Enabled`` (default true): the list is kept and used;
- ``SendLocalListMaxLength`` / ``LocalAuthListCtrlr/ItemsPerMessage`` (default 250): items per update;
- ``LocalAuthListMaxLength`` / ``LocalAuthListCtrlr/Entries.maxLimit`` (default 10000): entries
  the list holds (2.0.1: the maxLimit of the ``Entries`` variable);
- ``LocalAuthorizeOffline`` / ``AuthCtrlr/LocalAuthorizeOffline`` (``Settings.local_authorize_offline``):
  listed tags are authorized from the list while offline;
- ``AllowOfflineTxForUnknownId`` / ``AuthCtrlr/OfflineTxForUnknownIdEnabled`` (default true, as
  the fleet's stations always started offline): unlisted tags start transactions while offline.

A Differential update whose version is not above the list's is refused with ``VersionMismatch``
(it was made against another base); an update past the list's size or items per message ``Failed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ocppj.timestamps import parse_datetime
from ocppj.versions import OcppVersion
from simulators.link import Served

if TYPE_CHECKING:
    from simulators.model import ChargerOps

MAX_ENTRIES = 10_000
ITEMS_PER_MESSAGE = 250

_KEYS: dict[OcppVersion, dict[str, str]] = {
    OcppVersion.V16: {
        "enabled": "LocalAuthListEnabled", "items": "SendLocalListMaxLength",
        "max": "LocalAuthListMaxLength", "unknown": "AllowOfflineTxForUnknownId",
    },
    OcppVersion.V201: {
        "enabled": "LocalAuthListCtrlr/Enabled", "items": "LocalAuthListCtrlr/ItemsPerMessage",
        "max": "LocalAuthListCtrlr/Entries.maxLimit", "unknown": "AuthCtrlr/OfflineTxForUnknownIdEnabled",
    },
}
_DEFAULTS = {"enabled": "true", "items": str(ITEMS_PER_MESSAGE), "max": str(MAX_ENTRIES), "unknown": "true"}


@dataclass(frozen=True, slots=True)
class ListEntry:
    status: str
    expiry: datetime | None = None
    parent: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """One SendLocalList the charger received, and its answer (kept for tests and reports)."""

    update_type: str
    version: int
    items: int
    status: str


@dataclass
class LocalList:
    """The list itself: ``version`` (0: empty) and ``entries`` by id tag."""

    version: int = 0
    entries: dict[str, ListEntry] = field(default_factory=dict)
    updates: list[Update] = field(default_factory=list)

    def update(
        self, update_type: str, version: int, items: list[tuple[str, ListEntry | None]], *,
        max_entries: int, max_items: int,
    ) -> str:
        """Apply one SendLocalList; its status word."""
        status = self._apply(update_type, version, items, max_entries=max_entries, max_items=max_items)
        self.updates.append(Update(update_type, version, len(items), status))
        return status

    def _apply(
        self, update_type: str, version: int, items: list[tuple[str, ListEntry | None]], *,
        max_entries: int, max_items: int,
    ) -> str:
        if len(items) > max_items or len({k for k, _ in items}) != len(items):
            return "Failed"
        if update_type == "Full":
            new = {k: e for k, e in items if e is not None}
        else:
            if version <= self.version:
                return "VersionMismatch"
            new = dict(self.entries)
            for k, e in items:
                if e is None:
                    new.pop(k, None)
                else:
                    new[k] = e
        if len(new) > max_entries:
            return "Failed"
        self.entries, self.version = new, version
        return "Accepted"

    def lookup(self, id_tag: str) -> ListEntry | None:
        return self.entries.get(id_tag)


def setting(c: ChargerOps, name: str) -> str:
    """A local-list setting (enabled, items, max, unknown) in the charger's own version's key."""
    return c.settings.extra.get(_KEYS[c.spec.version][name], _DEFAULTS[name])


def _flag(c: ChargerOps, name: str) -> bool:
    return setting(c, name).lower() == "true"


def _number(c: ChargerOps, name: str) -> int:
    try:
        return max(1, int(setting(c, name)))
    except ValueError:
        return int(_DEFAULTS[name])


def authorize_offline(c: ChargerOps, id_tag: str, now: datetime) -> bool:
    """Whether ``id_tag`` may start a transaction while the CSMS is out of reach."""
    entry = c.local_list.lookup(id_tag) if _flag(c, "enabled") else None
    if entry is not None and c.settings.local_authorize_offline:
        return entry.status == "Accepted" and (entry.expiry is None or entry.expiry > now)
    return _flag(c, "unknown")


def config_v16() -> dict[str, str]:
    """The 1.6 configuration keys of the list with their defaults (``Settings.extra`` overrides them)."""
    return {_KEYS[OcppVersion.V16][n]: _DEFAULTS[n] for n in ("enabled", "items", "max", "unknown")}


READONLY_V16 = frozenset({"SendLocalListMaxLength", "LocalAuthListMaxLength"})


def variables_v201(c: ChargerOps) -> dict[tuple[str, str], tuple[str, str, str]]:
    """The 2.0.1 variables of the list: (component, variable) -> (value, mutability, dataType)."""
    return {
        ("LocalAuthListCtrlr", "Enabled"): (setting(c, "enabled"), "ReadWrite", "boolean"),
        ("LocalAuthListCtrlr", "ItemsPerMessage"): (setting(c, "items"), "ReadOnly", "integer"),
        ("LocalAuthListCtrlr", "Entries"): (str(len(c.local_list.entries)), "ReadOnly", "integer"),
        ("AuthCtrlr", "OfflineTxForUnknownIdEnabled"): (setting(c, "unknown"), "ReadWrite", "boolean"),
    }


def _update(c: ChargerOps, update_type: str, version: int, items: list[tuple[str, ListEntry | None]]) -> str:
    if not _flag(c, "enabled"):
        return "NotSupported" if c.spec.version is OcppVersion.V16 else "Failed"
    return c.local_list.update(update_type, version, items, max_entries=_number(c, "max"),
                               max_items=_number(c, "items"))


def _when(value: Any) -> datetime | None:
    return parse_datetime(value) if isinstance(value, str) else None


def send_local_list_v16(c: ChargerOps, p: dict[str, Any]) -> Served:
    items: list[tuple[str, ListEntry | None]] = []
    for item in p.get("localAuthorizationList") or []:
        info = item.get("idTagInfo")
        entry = None if info is None else ListEntry(info["status"], _when(info.get("expiryDate")),
                                                   info.get("parentIdTag"))
        items.append((item["idTag"], entry))
    return Served({"status": _update(c, p["updateType"], p["listVersion"], items)})


def get_version_v16(c: ChargerOps, p: dict[str, Any]) -> Served:
    return Served({"listVersion": c.local_list.version if _flag(c, "enabled") else -1})


def send_local_list_v201(c: ChargerOps, p: dict[str, Any]) -> Served:
    items: list[tuple[str, ListEntry | None]] = []
    for item in p.get("localAuthorizationList") or []:
        info = item.get("idTokenInfo")
        group = (info or {}).get("groupIdToken")
        entry = None if info is None else ListEntry(info["status"], _when(info.get("cacheExpiryDateTime")),
                                                   group["idToken"] if group else None)
        items.append((item["idToken"]["idToken"], entry))
    return Served({"status": _update(c, p["updateType"], p["versionNumber"], items)})


def get_version_v201(c: ChargerOps, p: dict[str, Any]) -> Served:
    return Served({"versionNumber": c.local_list.version})
