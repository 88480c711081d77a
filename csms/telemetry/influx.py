"""Batched, buffered writes of line-protocol points to InfluxDB (v1 ``/write`` or v2 API).

Data path::

    bus callback ──offer()──▶ memory batches ──pump──▶ hand-off queue ──sender──▶ InfluxDB
                                                 └────▶ disk spool ──────────────sender (replay)──┘

``offer`` only appends to a list: the OCPP path never waits for InfluxDB. The pump
cuts batches by size (``batch_size``) or age (``flush_interval_s``). While InfluxDB is
healthy and nothing is spooled, batches queue in memory for the sender (up to half of
``max_memory_points``; a burst beyond that goes to disk); otherwise they are
appended to the disk spool, which the sender replays oldest first, retrying with
exponential back-off (``retry_initial_s`` … ``retry_max_s``, jittered). Points carry
their own timestamps, so a segment replayed twice overwrites itself. Points are
dropped (counted and logged) only when the spool is full (``buffer_max_mb``), when a
memory overflow happens because the disk stalls (``max_memory_points``), or when
InfluxDB rejects them as malformed (HTTP 400, retrying cannot help).

HTTP runs in a worker thread (urllib3 for v1, ``influxdb-client`` for v2).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

import structlog
import urllib3

from csms.config import InfluxConfig
from csms.telemetry.spool import Spool

log = structlog.get_logger("csms.telemetry.influx")


class Outcome(enum.Enum):
    """What happened to one write request."""

    OK = "ok"
    RETRY = "retry"  # unreachable, timeout, 5xx, 429, auth/database problems: keep the data
    REJECTED = "rejected"  # 400 and other client errors: the data itself is bad


class Transport(Protocol):
    """Blocking write of one line-protocol body (called from a worker thread)."""

    def write(self, body: bytes) -> tuple[Outcome, str]: ...
    def close(self) -> None: ...


def classify(status: int) -> Outcome:
    """Outcome of an HTTP status from ``/write``."""
    if 200 <= status < 300:
        return Outcome.OK
    if status in (401, 403, 404, 408, 413, 429) or status >= 500:
        return Outcome.RETRY
    return Outcome.REJECTED


class V1Transport:
    """InfluxDB 1.x ``POST /write?db=...&rp=...&precision=ns`` with optional basic auth."""

    def __init__(self, cfg: InfluxConfig) -> None:
        self._base = cfg.url.rstrip("/")
        params = {"db": cfg.database, "precision": "ns"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        self._write_url = f"{self._base}/write?{urlencode(params)}"
        self._database = cfg.database
        self._create = cfg.create_database
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        if cfg.username:
            token = base64.b64encode(f"{cfg.username}:{cfg.password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {token}"
        self._http = urllib3.PoolManager(
            maxsize=2, retries=False,
            timeout=urllib3.Timeout(connect=min(cfg.timeout_s, 5), read=cfg.timeout_s),
        )

    def write(self, body: bytes) -> tuple[Outcome, str]:
        try:
            resp = self._http.request("POST", self._write_url, body=body, headers=self._headers)
        except urllib3.exceptions.HTTPError as exc:
            return Outcome.RETRY, type(exc).__name__
        outcome = classify(resp.status)
        detail = f"HTTP {resp.status} {resp.data[:200].decode(errors='replace').strip()}"
        if resp.status == 404 and self._create and b"database not found" in resp.data:
            self.create_database()
        return outcome, detail

    def create_database(self) -> None:
        """``CREATE DATABASE`` (idempotent in 1.x); errors are left to the next write."""
        q = urlencode({"q": f'CREATE DATABASE "{self._database}"'})
        with contextlib.suppress(urllib3.exceptions.HTTPError):
            self._http.request("POST", f"{self._base}/query?{q}", headers=self._headers)

    def close(self) -> None:
        self._http.clear()


class V2Transport:
    """InfluxDB 2.x/3.x (and compatible servers) through ``influxdb-client``'s v2 write API."""

    def __init__(self, cfg: InfluxConfig) -> None:
        from influxdb_client.client.influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        self._client = InfluxDBClient(
            url=cfg.url, token=cfg.token, org=cfg.org, timeout=int(cfg.timeout_s * 1000),
            retries=False, enable_gzip=False,
        )
        self._api = self._client.write_api(write_options=SYNCHRONOUS)
        self._bucket = cfg.bucket
        self._org = cfg.org

    def write(self, body: bytes) -> tuple[Outcome, str]:
        from influxdb_client.rest import ApiException

        try:
            self._api.write(bucket=self._bucket, org=self._org, record=body, write_precision="ns")  # type: ignore[arg-type]
        except ApiException as exc:
            status = int(exc.status or 0)
            return (classify(status) if status else Outcome.RETRY), f"HTTP {status} {exc.reason}"
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            return Outcome.RETRY, type(exc).__name__
        return Outcome.OK, "ok"

    def close(self) -> None:
        self._api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]


def make_transport(cfg: InfluxConfig) -> Transport:
    """The transport for ``cfg.api``."""
    return V1Transport(cfg) if cfg.api == "v1" else V2Transport(cfg)


@dataclass(slots=True)
class WriterStats:
    """Counters of the writer (exported as Prometheus metrics and ``csms`` health points)."""

    offered: int = 0
    written: int = 0
    spooled: int = 0
    replayed: int = 0
    dropped_full: int = 0
    dropped_memory: int = 0
    rejected: int = 0
    failures: int = 0
    batches: int = 0
    down: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class WriterSettings:
    """Batching and retry policy (from ``[influx]``)."""

    batch_size: int = 1000
    flush_interval_s: float = 1.0
    max_memory_points: int = 50_000
    retry_initial_s: float = 1.0
    retry_max_s: float = 30.0

    @classmethod
    def from_config(cls, cfg: InfluxConfig) -> WriterSettings:
        return cls(
            batch_size=cfg.batch_size, flush_interval_s=cfg.flush_interval_s,
            max_memory_points=max(cfg.max_memory_points, 2 * cfg.batch_size),
            retry_initial_s=cfg.retry_initial_s, retry_max_s=max(cfg.retry_max_s, cfg.retry_initial_s),
        )


class Backoff:
    """Exponential back-off with ±20 % jitter; ``reset`` after a success."""

    def __init__(self, initial_s: float, max_s: float, rand: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self._rand = rand
        self._next = initial_s

    def delay(self) -> float:
        d = self._next
        self._next = min(self.max_s, self._next * 2)
        return d * (0.8 + 0.4 * self._rand())

    def reset(self) -> None:
        self._next = self.initial_s


class InfluxWriter:
    """Owns the memory batches, the spool and the two tasks that move points to InfluxDB."""

    def __init__(self, transport: Transport, spool: Spool, settings: WriterSettings) -> None:
        self.transport = transport
        self.spool = spool
        self.settings = settings
        self.stats = WriterStats()
        self._pending: list[str] = []
        self._ready: deque[list[str]] = deque()
        self._memory = 0
        self._handoff_points = 0
        # healthy: up to half the memory budget waits for the sender; beyond, batches go to disk
        depth = max(2, settings.max_memory_points // settings.batch_size // 2)
        self._handoff: asyncio.Queue[list[str]] = asyncio.Queue(maxsize=depth)
        self._wake = asyncio.Event()
        self._sender_wake = asyncio.Event()
        self._backoff = Backoff(settings.retry_initial_s, settings.retry_max_s)
        self._retry_at = 0.0
        self._last_cut = time.monotonic()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_drop_log = self._last_reject_log = 0.0
        self._in_flight: dict[str, list[str]] = {}  # batch a task holds while awaiting I/O

    # --- the producer side (sync, never blocks) ---------------------------------------------
    @property
    def memory_points(self) -> int:
        """Points held in memory (pending + ready + hand-off)."""
        return self._memory + self._handoff_points

    def offer(self, line: str) -> None:
        """Queue one line-protocol line; never blocks, never raises."""
        self.stats.offered += 1
        if self._memory + self._handoff_points >= self.settings.max_memory_points:
            self.stats.dropped_memory += 1
            self._log_drop("memory full (disk buffer not keeping up)")
            return
        self._pending.append(line)
        self._memory += 1
        if len(self._pending) >= self.settings.batch_size:
            self._cut()
            self._wake.set()

    def _cut(self) -> None:
        if self._pending:
            self._ready.append(self._pending)
            self._pending = []
        self._last_cut = time.monotonic()

    def _log_drop(self, reason: str) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 10:
            self._last_drop_log = now
            log.warning(
                "telemetry points dropped", reason=reason,
                dropped_full=self.stats.dropped_full, dropped_memory=self.stats.dropped_memory,
            )

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the pump and the sender."""
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._pump(), name="influx-pump"),
            loop.create_task(self._sender(), name="influx-sender"),
        ]
        for task in self._tasks:
            task.add_done_callback(_log_crash)

    async def close(self, timeout_s: float = 5.0) -> None:
        """Stop; try to deliver what is in memory within ``timeout_s``, spool the rest."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._cut()
        batches = list(self._in_flight.values())  # may be delivered twice: points overwrite
        self._in_flight.clear()
        while not self._handoff.empty():
            batches.append(self._handoff.get_nowait())
        batches.extend(self._ready)
        self._ready.clear()
        self._memory = self._handoff_points = 0
        deadline = time.monotonic() + timeout_s
        for batch in batches:
            delivered = False
            if not self.stats.down and self.spool.empty() and time.monotonic() < deadline:
                delivered = await self._send(batch, live=True)
            if not delivered:
                await self._to_spool(batch)
        await asyncio.to_thread(self.transport.close)
        self.spool.close()

    # --- the pump: memory -> hand-off or spool -----------------------------------------------
    async def _pump(self) -> None:
        interval = self.settings.flush_interval_s
        while True:
            timeout = max(0.0, self._last_cut + interval - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if time.monotonic() - self._last_cut >= interval:
                self._cut()
            await self._dispatch()

    async def _dispatch(self) -> None:
        while self._ready:
            batch = self._ready.popleft()
            self._memory -= len(batch)
            direct = not self.stats.down and not self._handoff.full() and self.spool.empty()
            if direct:
                self._handoff.put_nowait(batch)
                self._handoff_points += len(batch)
            else:
                self._in_flight["pump"] = batch
                await self._to_spool(batch)
                del self._in_flight["pump"]
            self._sender_wake.set()

    async def _to_spool(self, batch: list[str]) -> None:
        if await asyncio.to_thread(self.spool.append, batch):
            self.stats.spooled += len(batch)
        else:
            self.stats.dropped_full += len(batch)
            self._log_drop("disk buffer full")

    # --- the sender: hand-off first, then the spool ------------------------------------------
    async def _sender(self) -> None:
        while True:
            if not self._handoff.empty():
                batch = self._handoff.get_nowait()
                self._handoff_points -= len(batch)
                self._in_flight["sender"] = batch
                if not await self._send(batch, live=True):
                    await self._to_spool(batch)
                del self._in_flight["sender"]
                continue
            wait = self._retry_at - time.monotonic()
            if wait <= 0 and not self.spool.empty():
                await self._replay_head()
                continue
            self._sender_wake.clear()
            timeout = wait if wait > 0 and not self.spool.empty() else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sender_wake.wait(), timeout)

    async def _replay_head(self) -> None:
        seg = await asyncio.to_thread(self.spool.head)
        if seg is None:
            return
        lines = await asyncio.to_thread(self.spool.read, seg)
        size = self.settings.batch_size * 5
        for start in range(0, len(lines), size):
            chunk = lines[start:start + size]
            if not await self._send(chunk, live=False):
                return  # the whole segment is sent again later: points overwrite themselves
        else:
            self.stats.replayed += len(lines)
            await asyncio.to_thread(self.spool.remove, seg)
            if self.spool.empty():
                log.info("telemetry backlog replayed into InfluxDB")

    async def _send(self, batch: list[str], *, live: bool) -> bool:
        """True when the batch is done with (written or rejected); False to keep it."""
        if live and self.stats.down:
            return False
        body = ("\n".join(batch)).encode()
        outcome, detail = await asyncio.to_thread(self.transport.write, body)
        self.stats.batches += 1
        if outcome is Outcome.OK:
            self.stats.written += len(batch)
            self._recovered()
            return True
        if outcome is Outcome.REJECTED:
            self.stats.rejected += len(batch)
            now = time.monotonic()
            if now - self._last_reject_log >= 10:
                self._last_reject_log = now
                log.error("InfluxDB rejected a batch (malformed points are not retried)",
                          points=len(batch), rejected_total=self.stats.rejected, detail=detail)
            return True
        self._failed(detail)
        return False

    def _recovered(self) -> None:
        if self.stats.down:
            log.info("InfluxDB reachable again", spooled_points=self.spool.lines)
        self.stats.down = False
        self._backoff.reset()
        self._retry_at = 0.0

    def _failed(self, detail: str) -> None:
        self.stats.failures += 1
        delay = self._backoff.delay()
        self._retry_at = time.monotonic() + delay
        if not self.stats.down:
            log.warning("InfluxDB write failed; buffering to disk", detail=detail, retry_in_s=round(delay, 1))
        self.stats.down = True


def _log_crash(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("telemetry task crashed", task=task.get_name(), exc_info=task.exception())
