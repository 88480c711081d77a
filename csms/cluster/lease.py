"""Singleton election: which core node runs each loop that must run once (balancer, expiry, …).

A loop asks ``lease.held()`` before each tick and acts only when it is true. ``SqlElector`` keeps
one row per name in ``cluster_leases`` (holder, expiry, fencing token) and renews the rows it
holds every ``renew_s``; a node that does not hold a name tries to take it over at the same pace,
which succeeds once the row has expired. So a holder killed with ``kill -9`` (no clean release)
is replaced within ``lease_ttl_s + renew_s``; a clean stop releases at once.

Why a lease table and not PostgreSQL session advisory locks: an advisory lock lives as long as
the holder's database connection. When the holder's host dies or is cut off, the server keeps
the connection, and the lock, until TCP keepalive gives up (two hours by default), and the
holder, cut off, cannot know whether it still holds the lock. A lease expires by the database's
clock whatever the network does, and the holder can bound its own belief without any answer:

- ``held()`` is true only until ``sent + ttl`` by this process's monotonic clock, ``sent`` being
  when the last successful claim was sent. The database wrote ``expiry = its now + ttl`` with its
  now later than ``sent``, so the holder stops believing before anyone else can take over, even
  when it cannot reach the database, and a process paused past its lease (a GC pause, SIGSTOP)
  learns on waking, before acting, that its lease is gone.
- The fencing token grows on every change of holder; a write that must not come from a stale
  holder can carry it and be refused when it is not the current one.

With SQLite there is one process: ``LocalElector`` makes it the holder of every name.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import structlog

from csms.config import ClusterConfig
from csms.errors import CsmsError
from csms.store.leases import SqlLeases

log = structlog.get_logger("csms.cluster")


class Lease:
    """This node's belief about one named lease, bounded by its own monotonic clock."""

    def __init__(self, name: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.token: int | None = None  # the fencing token of the last grant
        self._deadline = -math.inf
        self._monotonic = monotonic

    def held(self) -> bool:
        """True while the last grant, counted from when it was asked for, has not run out."""
        return self.token is not None and self._monotonic() < self._deadline

    def granted(self, token: int, sent_at: float, ttl_s: float) -> bool:
        """Record a grant asked for at ``sent_at`` (monotonic); True when it is a new holding."""
        new = not self.held() or token != self.token
        self.token = token
        self._deadline = sent_at + ttl_s
        return new

    def lost(self) -> bool:
        """Record that another node holds it; True when this node had held it (even if its belief
        had run out already, e.g. after a pause)."""
        was = self.token is not None
        self.token = None
        self._deadline = -math.inf
        return was

    def forever(self, token: int = 0) -> None:
        """Hold it for the life of the process (a single node)."""
        self.token = token
        self._deadline = math.inf


@dataclass(frozen=True, slots=True)
class LeaseInfo:
    """A lease as the operator sees it (``GET /api/cluster``)."""

    name: str
    holder: str
    token: int
    expires_at: datetime | None  # None: held for the life of the process
    held_here: bool


class Elector(Protocol):
    """Hands out this node's leases and keeps them renewed."""

    node_id: str

    def lease(self, name: str) -> Lease: ...

    def names(self) -> list[tuple[str, bool]]: ...

    async def start(self) -> None: ...

    async def run(self) -> None: ...

    async def stop(self) -> None: ...

    async def leases(self) -> list[LeaseInfo]: ...


class LocalElector:
    """One process (SQLite): the holder of every name, always."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self._leases: dict[str, Lease] = {}

    def lease(self, name: str) -> Lease:
        if name not in self._leases:
            lease = self._leases[name] = Lease(name)
            lease.forever()
        return self._leases[name]

    def names(self) -> list[tuple[str, bool]]:
        return [(name, lease.held()) for name, lease in sorted(self._leases.items())]

    async def start(self) -> None:
        return None

    async def run(self) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def leases(self) -> list[LeaseInfo]:
        return [LeaseInfo(name, self.node_id, 0, None, True) for name in sorted(self._leases)]


class SqlElector:
    """Leases in the shared database (``csms.store.leases``), renewed every ``renew_s``."""

    def __init__(
        self, store: SqlLeases, node_id: str, *, ttl_s: float = 10.0, renew_s: float = 3.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.node_id = node_id
        self.ttl_s = ttl_s
        self.renew_s = renew_s
        self._monotonic = monotonic
        self._leases: dict[str, Lease] = {}

    def lease(self, name: str) -> Lease:
        if name not in self._leases:
            self._leases[name] = Lease(name, monotonic=self._monotonic)
        return self._leases[name]

    def names(self) -> list[tuple[str, bool]]:
        return [(name, lease.held()) for name, lease in sorted(self._leases.items())]

    async def renew(self, lease: Lease) -> bool:
        """Renew ``lease`` or try to take it over; returns ``held()`` afterwards. A database that does
        not answer changes nothing: the lease runs out by itself."""
        sent = self._monotonic()
        try:
            claim = await asyncio.wait_for(
                self.store.claim(lease.name, self.node_id, lease.token, self.ttl_s), self.ttl_s / 2
            )
        except Exception as exc:  # the database is away: the lease runs out by itself
            log.warning("lease not renewed", lease=lease.name, node=self.node_id, error=repr(exc))
            return lease.held()
        if claim is None:
            if lease.lost():
                log.warning("lease lost", lease=lease.name, node=self.node_id)
        elif lease.granted(claim.token, sent, self.ttl_s):
            log.info("lease acquired", lease=lease.name, node=self.node_id, token=claim.token)
        return lease.held()

    async def renew_all(self) -> None:
        await asyncio.gather(*(self.renew(lease) for lease in list(self._leases.values())))

    async def start(self) -> None:
        """Claim every lease asked for so far once, before the loops start ticking."""
        await self.renew_all()

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.renew_s)
            await self.renew_all()

    async def stop(self) -> None:
        """Release what this node holds, so another node takes over without waiting for expiry."""
        for lease in self._leases.values():
            token = lease.token
            if token is not None and lease.held():
                lease.lost()
                with contextlib.suppress(CsmsError, OSError, TimeoutError):
                    release = self.store.release(lease.name, self.node_id, token)
                    await asyncio.wait_for(release, self.ttl_s / 2)

    async def leases(self) -> list[LeaseInfo]:
        out = []
        for r in await self.store.list():
            mine = self._leases.get(r.name)
            here = mine is not None and r.holder == self.node_id and mine.held() and mine.token == r.token
            out.append(LeaseInfo(r.name, r.holder, r.token, r.expires_at, here))
        return out


def elector_for(store: SqlLeases, cfg: ClusterConfig) -> Elector:
    """Leases in the database on PostgreSQL; on SQLite (one process) this node runs everything."""
    if store.db.sqlite:
        return LocalElector(cfg.node_id)
    return SqlElector(store, cfg.node_id, ttl_s=cfg.lease_ttl_s, renew_s=cfg.renew_s)
