"""Process set-up for many sockets and many long-lived objects: fd limit, GC, event loop.

Used by the fleet's CLI, its worker processes and the benchmarks' load generators.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import resource
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def raise_nofile() -> int:
    """Raise the open-files soft limit to the hard limit when allowed; return the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def tune_gc() -> None:
    """Fewer full collections: the fleet allocates many long-lived objects."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 50, 100)


def fast_loop(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when installed, else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)
