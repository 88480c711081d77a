"""A child process that only watches its parent pipe (no parent-death signal), for the tests."""

from __future__ import annotations

import asyncio
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event

from simulators.lifeline import watch_parent


def watch_for_a_minute(reader: Connection, watching: Event) -> None:
    async def main() -> None:
        watch_parent(reader, lambda: None)
        watching.set()
        await asyncio.sleep(60)

    asyncio.run(main())
