"""Two nodes compete for leases on a real PostgreSQL: one leader, takeover after a kill -9, fencing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from csms.cluster.lease import SqlElector
from csms.store.engine import Database
from csms.store.leases import SqlLeases

ROOT = Path(__file__).resolve().parents[2]
TTL_S, RENEW_S = 2.0, 0.5

HOLDER = f"""
import asyncio, sys, time
from csms.cluster.lease import SqlElector
from csms.store.engine import Database
from csms.store.leases import SqlLeases

async def main(url: str, name: str) -> None:
    db = await Database.open(url)
    elector = SqlElector(SqlLeases(db), "doomed", ttl_s={TTL_S}, renew_s={RENEW_S})
    lease = elector.lease(name)
    await elector.start()
    print("held" if lease.held() else "not held", lease.token, flush=True)
    renewing = asyncio.create_task(elector.run())
    while True:  # the singleton's rounds: act only while elected, say when
        if lease.held():
            print("act", lease.token, time.time(), flush=True)
        await asyncio.sleep(0.05)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def _answer(out: asyncio.StreamReader) -> str:
    """The holder's line, past its log lines."""
    while line := (await out.readline()).decode():
        if line.startswith(("held", "not held")):
            return line
    return ""


async def _collect(out: asyncio.StreamReader, into: list[str]) -> None:
    while line := (await out.readline()).decode():
        into.append(line)


@pytest.fixture
async def two_nodes(pg_url: str) -> AsyncIterator[tuple[SqlElector, SqlElector]]:
    """Two nodes, each with its own engine (connection pool) on the same database."""
    a = await Database.open(pg_url)
    b = await Database.open(pg_url)
    try:
        yield (SqlElector(SqlLeases(a), "node-a", ttl_s=TTL_S, renew_s=RENEW_S),
               SqlElector(SqlLeases(b), "node-b", ttl_s=TTL_S, renew_s=RENEW_S))
    finally:
        await a.close()
        await b.close()


async def test_exactly_one_of_two_competing_nodes_leads(two_nodes: tuple[SqlElector, SqlElector]) -> None:
    a, b = two_nodes
    la, lb = a.lease("compete"), b.lease("compete")
    for _ in range(6):  # both claim at the same moment, several rounds
        await asyncio.gather(a.renew_all(), b.renew_all())
        assert la.held() != lb.held()
    leader = a if la.held() else b
    [row] = [x for x in await leader.leases() if x.name == "compete"]
    assert row.holder == leader.node_id and row.token == 1 and row.held_here
    [seen] = [x for x in await (b if leader is a else a).leases() if x.name == "compete"]
    assert seen.holder == leader.node_id and not seen.held_here


async def test_a_node_killed_with_sigkill_is_replaced_within_ttl_and_renew(
    pg_url: str, two_nodes: tuple[SqlElector, SqlElector],
) -> None:
    _, survivor = two_nodes
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, pg_url, "killed", env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        first = await asyncio.wait_for(_answer(proc.stdout), 30)
        assert first.split() == ["held", "1"]
        lease = survivor.lease("killed")
        await survivor.renew(lease)
        assert not lease.held()  # the other process renews it
        proc.send_signal(signal.SIGKILL)  # no clean release
        killed_at = time.monotonic()
        while not await survivor.renew(lease):
            assert time.monotonic() - killed_at < TTL_S + RENEW_S + 2.0, "no takeover"
            await asyncio.sleep(RENEW_S)
        took = time.monotonic() - killed_at
        print(f"takeover {took:.2f} s after SIGKILL (ttl {TTL_S} s, renew {RENEW_S} s)")
        assert took <= TTL_S + RENEW_S + 1.0  # + slack for a loaded machine
        assert lease.token == 2  # the fencing token grew
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def test_a_paused_leader_learns_on_waking_that_it_lost_before_acting(
    two_nodes: tuple[SqlElector, SqlElector],
) -> None:
    a, b = two_nodes
    la, lb = a.lease("paused"), b.lease("paused")
    await a.renew_all()
    assert la.held() and la.token == 1
    await b.renew_all()
    assert not lb.held()
    await asyncio.sleep(TTL_S + 0.1)  # "a" is paused: no renewals (a long GC pause, SIGSTOP)
    await b.renew_all()
    assert lb.held() and lb.token == 2
    assert not la.held()  # on waking, before any round trip: its own clock says the grant ran out
    assert la.token == 1  # ... and a write fenced with token 1 would be refused
    assert not await a.renew(la)  # the database agrees: another node holds it
    assert lb.held()
    [row] = [x for x in await a.leases() if x.name == "paused"]
    assert (row.holder, row.token, row.held_here) == ("node-b", 2, False)


async def test_a_process_stopped_with_sigstop_does_not_act_after_the_takeover(
    pg_url: str, two_nodes: tuple[SqlElector, SqlElector],
) -> None:
    _, survivor = two_nodes
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", HOLDER, pg_url, "stopped", env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(_answer(proc.stdout), 30)).split() == ["held", "1"]
        reading = asyncio.create_task(_collect(proc.stdout, lines))
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGSTOP)  # paused: it neither renews nor acts
        lease = survivor.lease("stopped")
        while True:
            asked_at = time.time()
            if await survivor.renew(lease):
                break
            await asyncio.sleep(RENEW_S)
        assert lease.token == 2
        proc.send_signal(signal.SIGCONT)  # it wakes up with its rounds due at once
        await asyncio.sleep(1.5)
        proc.kill()
        await proc.wait()
        await asyncio.wait_for(reading, 10)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGCONT)
            proc.kill()
            await proc.wait()
    acts = [float(x.split()[2]) for x in lines if x.startswith("act")]
    assert acts, "the holder never acted"
    assert max(acts) < asked_at  # nothing after the survivor asked for the lease it got
    assert any("lease lost" in x for x in lines)  # and its renewal learnt it lost
    assert await survivor.renew(lease) and lease.token == 2


async def test_a_clean_stop_hands_over_without_waiting_for_expiry(
    two_nodes: tuple[SqlElector, SqlElector],
) -> None:
    a, b = two_nodes
    la, lb = a.lease("handover"), b.lease("handover")
    await a.start()
    await b.start()
    assert la.held() and not lb.held()
    await a.stop()
    assert not la.held()
    assert await b.renew(lb) and lb.token == 2
