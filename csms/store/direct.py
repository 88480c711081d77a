"""Fixed SQL on the DB-API connection: one unit of work costs one hop to the database.

A SQLite file gets a connection of its own on one worker thread: the work and its commit run
there in one call, without SQLAlchemy's compilation, bind processors and per-statement thread
hops (each hop costs ~50 µs of CPU here). Other databases (PostgreSQL, in-memory SQLite) run
the same work in ``AsyncConnection.run_sync`` on a pooled connection, one round trip per
statement. The work gets a DB-API cursor; SQL is written with ``?`` placeholders (``sql()``
rewrites them for asyncpg) and timestamps pass through ``ts()`` / ``ts_in()``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from csms.errors import StoreUnavailable

R = TypeVar("R")
Work = Callable[[Any], R]


class Conflict(Exception):
    """A unique constraint refused the work; none of it was committed."""


_SQLITE_TS = "%04d-%02d-%02d %02d:%02d:%02d.%06d"


def sqlite_ts(dt: datetime) -> str:
    """A timestamp as SQLAlchemy's SQLite ``DATETIME`` stores it (naive UTC, microseconds).

    Formats the fields itself: the same text as ``isoformat(" ", "microseconds")`` of the naive
    UTC time, at less than half the cost (one per stored event).
    """
    tz = dt.tzinfo
    if tz is not None and tz is not UTC and dt.utcoffset():
        dt = dt.astimezone(UTC)
    return _SQLITE_TS % (dt.year, dt.month, dt.day, dt.hour, dt.minute, dt.second, dt.microsecond)


def sqlite_pragmas(cur: Any, *, synchronous: str, wal: bool) -> None:
    """The settings every SQLite connection of the store uses (the engine's and ours)."""
    if wal:
        cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA synchronous={synchronous}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


class DirectSql:
    """Runs ``work(cursor)`` in one transaction, committed before ``run`` returns."""

    def __init__(
        self, engine: AsyncEngine, *, sqlite_file: str | None = None, synchronous: str = "FULL"
    ) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self._file = sqlite_file if self.sqlite else None
        self._synchronous = synchronous.upper()
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(1, "csms-sqlite") if self._file else None
        dbapi: Any = engine.dialect.dbapi
        self._conflicts: tuple[type[BaseException], ...] = (sqlite3.IntegrityError, IntegrityError)
        self._failures: tuple[type[BaseException], ...] = (
            sqlite3.Error, DBAPIError, OSError, ConnectionError,
        )
        if dbapi is not None:
            self._conflicts += (dbapi.IntegrityError,)
            self._failures += (dbapi.Error,)

    # --- dialect ------------------------------------------------------------------------
    def sql(self, text: str) -> str:
        """``?`` placeholders as the driver wants them (``$1, $2, …`` for asyncpg)."""
        if self.sqlite:
            return text
        parts = text.split("?")
        return "".join(f"{p}${i}" for i, p in enumerate(parts[:-1], 1)) + parts[-1]

    def ts(self, dt: datetime | None) -> Any:
        """A timestamp parameter for a ``UtcDateTime`` column (naive means UTC)."""
        if dt is None:
            return None
        if self.sqlite:
            return sqlite_ts(dt)
        return dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)

    @staticmethod
    def ts_in(value: Any) -> datetime | None:
        """A ``UtcDateTime`` column value as read by the driver, as an aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    def returning_pk(self) -> str:
        """Suffix for an INSERT whose new ``pk`` ``inserted_pk`` reads (``lastrowid`` on SQLite)."""
        return "" if self.sqlite else " RETURNING pk"

    def inserted_pk(self, cur: Any) -> int:
        return int(cur.lastrowid if self.sqlite else cur.fetchone()[0])

    # --- running work -------------------------------------------------------------------
    async def run(self, work: Work[R]) -> R:
        """Run and commit ``work``; a unique-key failure raises ``Conflict``, others ``StoreUnavailable``."""
        try:
            if self._thread is not None:
                return await asyncio.get_running_loop().run_in_executor(self._thread, self._in_thread, work)
            async with self.engine.begin() as conn:
                return await conn.run_sync(self._on_pooled, work)
        except self._conflicts as exc:
            raise Conflict(str(exc)) from exc
        except self._failures as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def read(self, work: Work[R]) -> R:
        """Run read-only ``work`` without taking the writer's turn; on a SQLite file it runs on a
        worker thread with a connection of its own, so a large read does not stall the event loop."""
        try:
            if self._file is not None:
                return await asyncio.to_thread(self._read_in_thread, work)
            async with self.engine.connect() as conn:
                return await conn.run_sync(self._on_pooled, work)
        except self._failures as exc:
            raise StoreUnavailable(str(exc)) from exc

    def _read_in_thread(self, work: Work[R]) -> R:
        assert self._file is not None
        conn = sqlite3.connect(self._file, timeout=30)
        try:
            return work(conn.cursor())
        finally:
            conn.close()

    @staticmethod
    def _on_pooled(sync_conn: Any, work: Work[R]) -> R:
        cur = sync_conn.connection.dbapi_connection.cursor()
        try:
            return work(cur)
        finally:
            cur.close()

    def _in_thread(self, work: Work[R]) -> R:
        conn = self._conn or self._connect()
        cur = conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            result = work(cur)
            cur.execute("COMMIT")
            return result
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        finally:
            cur.close()

    def _connect(self) -> sqlite3.Connection:
        assert self._file is not None
        conn = sqlite3.connect(self._file, timeout=30, isolation_level=None, check_same_thread=False)
        sqlite_pragmas(conn.cursor(), synchronous=self._synchronous, wal=True)
        self._conn = conn
        return conn

    async def close(self) -> None:
        if self._thread is None:
            return
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_in_thread)
        self._thread.shutdown(wait=True)
        self._thread = None

    def _close_in_thread(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
