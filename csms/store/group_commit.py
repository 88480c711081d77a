"""Group commit: callers await their own result; one writer applies everything queued so far
in one batch (one database commit), so concurrent transaction messages share an fsync.

With ``linger_s``, a batch of fewer than ``linger_below`` items waits up to that long for
company (like PostgreSQL's ``commit_delay``), but only while submissions arrive at least
twice per ``linger_s`` and lingering lately did gather more items: at moderate rates from
many callers this turns one-item commits (each a thread hop and an fsync) into fewer, larger
ones; at low rates nothing waits, at high ones batches are large anyway, and a lone caller
submitting in a loop is not kept waiting for company that cannot come.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from csms.errors import StoreUnavailable

T = TypeVar("T")
R = TypeVar("R")

_Entry = tuple[T, "asyncio.Future[R]"]


class GroupCommit(Generic[T, R]):
    """Batch concurrent ``submit`` calls into calls of ``apply(batch) -> results`` (same order)."""

    def __init__(
        self, apply: Callable[[list[T]], Awaitable[list[R]]], *, max_batch: int = 512,
        linger_s: float = 0.0, linger_below: int = 4,
    ) -> None:
        self._apply = apply
        self._max_batch = max_batch
        self._linger_s = linger_s
        self._linger_below = linger_below
        # a plain list, not an asyncio.Queue: batches are taken by slicing (~1 µs less per item)
        self._pending: list[_Entry[T, R]] = []
        self._writer: asyncio.Task[None] | None = None
        # the writer's loop, kept: ``get_running_loop`` costs a getpid() syscall on Python 3.11
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._last_submit = 0.0
        self._gap = 1.0  # moving average of the time between submissions (s)
        self._wakeup: asyncio.Future[None] | None = None  # set while the writer waits for items
        self._want = 0  # pending items that wake the writer
        self._gain = 1.0  # moving average of the items a linger added to its batch
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item``; returns its result once the batch holding it was applied."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        loop = self._loop
        if self._writer is None or loop is None:
            loop = self._loop = asyncio.get_running_loop()
            self._writer = loop.create_task(self._run(), name="group-commit")
        if self._linger_s:
            now = time.monotonic()
            self._gap = (self._gap + min(now - self._last_submit, 1.0)) / 2
            self._last_submit = now
        fut: asyncio.Future[R] = loop.create_future()
        pending = self._pending
        pending.append((item, fut))
        if self._wakeup is not None and len(pending) >= self._want:
            _settle(self._wakeup)
        return await fut

    async def _run(self) -> None:
        pending = self._pending
        while True:
            if not pending:
                await self._wait(1, None)
            batch: list[_Entry[T, R]] = []
            try:
                size = min(len(pending), self._max_batch)
                if self._should_linger(size):
                    await self._wait(self._linger_below, self._linger_s)
                    self._gain = (self._gain + min(len(pending), self._max_batch) - size) / 2
                batch = pending[:self._max_batch]
                del pending[:self._max_batch]
                results = await self._apply([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"group commit: {len(results)} results for {len(batch)} items")
            except asyncio.CancelledError:
                _fail(batch, StoreUnavailable("store is closed"))
                raise
            except Exception as exc:
                _fail(batch, exc)
                continue
            self.batches += 1
            self.items += len(batch)
            for (_, fut), result in zip(batch, results, strict=True):
                if not fut.done():
                    fut.set_result(result)

    def _should_linger(self, size: int) -> bool:
        """A small batch, submissions coming fast, and lingering lately gained something (else
        only a probe now and then: one caller submitting in a loop never gains from waiting)."""
        return (
            size < self._linger_below and self._gap * 2 < self._linger_s
            and (self._gain >= 0.5 or self.batches % 32 == 0)
        )

    async def _wait(self, want: int, timeout_s: float | None) -> None:
        """Wait until ``want`` items are pending (or ``timeout_s`` passed)."""
        loop = asyncio.get_running_loop()
        self._want = want
        self._wakeup = wakeup = loop.create_future()
        timer = loop.call_later(timeout_s, _settle, wakeup) if timeout_s is not None else None
        try:
            await wakeup
        finally:
            if timer is not None:
                timer.cancel()
            self._wakeup = None

    async def close(self) -> None:
        """Stop the writer; whoever still waits (queued or being applied) gets ``StoreUnavailable``."""
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
            self._loop = None
        _fail(self._pending, StoreUnavailable("store is closed"))
        self._pending.clear()


def _fail(batch: list[_Entry[T, R]], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
