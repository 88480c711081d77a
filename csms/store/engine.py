"""The database connection every part of the store shares: open, migrate, close, and how to write.

SQLite has one writer, so its writes take turns through one lock (``write``, ``direct``);
PostgreSQL relies on unique constraints. Driver failures become ``StoreUnavailable``; a unique
key's ``IntegrityError`` passes through for the caller to judge.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from csms.errors import StoreUnavailable
from csms.store import schema
from csms.store.direct import DirectSql, Work, sqlite_pragmas

R = TypeVar("R")


def database_url(db: str) -> str:
    """Turn a ``--db`` value (a path, ``sqlite:///…`` or ``postgresql://…``) into an async URL."""
    if db.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + db.split("://", 1)[1]
    if db.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return db
    if db.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + db[len("sqlite:///"):]
    if db == ":memory:":
        return "sqlite+aiosqlite:///:memory:"
    return "sqlite+aiosqlite:///" + str(Path(db).expanduser())


def now() -> datetime:
    """The time a row is received at (UTC)."""
    return datetime.now(UTC)


class Database:
    """One engine, its fixed-SQL runner (``csms.store.direct``) and SQLite's writer turn."""

    def __init__(
        self, engine: AsyncEngine, *, sqlite_file: str | None = None, synchronous: str = "FULL"
    ) -> None:
        self.engine = engine
        self.sqlite = engine.dialect.name == "sqlite"
        self.direct_sql = DirectSql(engine, sqlite_file=sqlite_file, synchronous=synchronous)
        self._write_lock = asyncio.Lock()

    @classmethod
    async def open(cls, db: str, *, synchronous: str = "FULL") -> Database:
        """Connect and apply migrations."""
        url = database_url(db)
        sqlite_file: str | None = None
        if url.startswith("sqlite"):
            path = url.split("///", 1)[1]
            sqlite_file = path if path != ":memory:" else None
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            engine = create_async_engine(url, connect_args={"timeout": 30})
            sync_mode = synchronous.upper()

            @event.listens_for(engine.sync_engine, "connect")
            def _pragmas(dbapi_conn: Any, _record: Any) -> None:
                sqlite_pragmas(dbapi_conn.cursor(), synchronous=sync_mode, wal=path != ":memory:")
        else:
            engine = create_async_engine(url, pool_size=10, max_overflow=10, pool_pre_ping=True)
        database = cls(engine, sqlite_file=sqlite_file, synchronous=synchronous)
        try:
            async with engine.begin() as conn:
                await conn.run_sync(schema.migrate)
        except (SQLAlchemyError, OSError) as exc:
            await engine.dispose()
            raise StoreUnavailable(f"cannot open database {db!r}: {exc}") from exc
        return database

    async def close(self) -> None:
        await self.direct_sql.close()
        await self.engine.dispose()

    @asynccontextmanager
    async def serialised(self) -> AsyncIterator[None]:
        """SQLite has one writer: its writes take turns (PostgreSQL relies on unique constraints)."""
        if self.sqlite:
            async with self._write_lock:
                yield
        else:
            yield

    async def direct(self, work: Work[R]) -> R:
        """Run fixed-SQL ``work`` in its own committed transaction (see ``csms.store.direct``)."""
        async with self.serialised():
            return await self.direct_sql.run(work)

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A connection in a transaction committed on exit (SQLite: in the writer's turn)."""
        try:
            if self.sqlite:
                async with self._write_lock, self.engine.begin() as conn:
                    yield conn
            else:
                async with self.engine.begin() as conn:
                    yield conn
        except IntegrityError:
            raise
        except (DBAPIError, OSError, ConnectionError) as exc:
            raise StoreUnavailable(str(exc)) from exc

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        try:
            async with self.engine.connect() as conn:
                yield conn
        except (DBAPIError, OSError, ConnectionError) as exc:
            raise StoreUnavailable(str(exc)) from exc
