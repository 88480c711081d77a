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
        self._queue: asyncio.Queue[_Entry[T, R]] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._closed = False
        self._last_submit = 0.0
        self._gap = 1.0  # moving average of the time between submissions (s)
        self._filled: asyncio.Future[None] | None = None  # set while the writer lingers
        self._want = 0  # queued items that end the linger early
        self._gain = 1.0  # moving average of the items a linger added to its batch
        self.batches = 0
        self.items = 0

    async def submit(self, item: T) -> R:
        """Queue ``item``; returns its result once the batch holding it was applied."""
        if self._closed:
            raise StoreUnavailable("store is closed")
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._writer = asyncio.get_running_loop().create_task(self._run(self._queue), name="group-commit")
        if self._linger_s:
            now = time.monotonic()
            self._gap = (self._gap + min(now - self._last_submit, 1.0)) / 2
            self._last_submit = now
        fut: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((item, fut))
        if self._filled is not None and self._queue.qsize() >= self._want:
            _settle(self._filled)
        return await fut

    async def _run(self, queue: asyncio.Queue[_Entry[T, R]]) -> None:
        while True:
            batch = [await queue.get()]
            self._drain(queue, batch)
            try:
                if self._should_linger(len(batch)):
                    before = len(batch)
                    await self._linger(queue, batch)
                    self._gain = (self._gain + len(batch) - before) / 2
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

    async def _linger(self, queue: asyncio.Queue[_Entry[T, R]], batch: list[_Entry[T, R]]) -> None:
        """Wait until the batch could reach ``linger_below`` items, or ``linger_s`` passed."""
        loop = asyncio.get_running_loop()
        self._want = self._linger_below - len(batch)
        self._filled = filled = loop.create_future()
        timer = loop.call_later(self._linger_s, _settle, filled)
        try:
            await filled
        finally:
            timer.cancel()
            self._filled = None
        self._drain(queue, batch)

    def _drain(self, queue: asyncio.Queue[_Entry[T, R]], batch: list[_Entry[T, R]]) -> None:
        while len(batch) < self._max_batch and not queue.empty():
            batch.append(queue.get_nowait())

    async def close(self) -> None:
        """Stop the writer; whoever still waits (queued or being applied) gets ``StoreUnavailable``."""
        self._closed = True
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._queue is not None:
            left: list[_Entry[T, R]] = []
            while not self._queue.empty():
                left.append(self._queue.get_nowait())
            _fail(left, StoreUnavailable("store is closed"))


def _fail(batch: list[_Entry[T, R]], exc: BaseException) -> None:
    for _, fut in batch:
        if not fut.done():
            fut.set_exception(exc)


def _settle(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
