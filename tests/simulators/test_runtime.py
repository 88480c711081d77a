"""Process set-up of the fleet and the load generators."""

from __future__ import annotations

import asyncio
import resource

from simulators.runtime import fast_loop, raise_nofile


def test_raise_nofile_returns_the_soft_limit_in_force() -> None:
    limit = raise_nofile()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert limit == soft and soft >= min(hard, 1024)


def test_fast_loop_runs_a_coroutine_to_its_result() -> None:
    async def answer() -> int:
        await asyncio.sleep(0)
        return 42

    assert fast_loop(answer()) == 42
