"""CSMS cores, gateways and the simulator fleet on the nodes of a namespace cluster, and what the
tests check about them: the operator API from the root namespace, the rows in PostgreSQL, the
fleet's ledger of acknowledged transaction messages (``simulators.ledger``)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from simulators import ledger
from tests.cluster.netns import Node, Proc

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = Path(__file__).with_name("churn.toml")
TOKEN = "netns-test-operator-token"
OCPP_PORT, API_PORT = 9000, 8080


def env(**settings: str) -> dict[str, str]:
    """This process's environment without ``CSMS_*`` settings, plus ``settings`` (``CSMS_...``)."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    base["PYTHONPATH"] = str(ROOT)
    base["CSMS_API_TOKEN"] = TOKEN
    return {**base, **settings}


def csms(node: Node, *args: str, name: str, **settings: str) -> Proc:
    """``python -m csms ARGS`` on ``node``, logging JSON warnings."""
    argv = [sys.executable, "-m", "csms", *args, "--log-format", "json", "--log-level", "warning"]
    return node.spawn(argv, env=env(**settings), name=name)


def fleet(
    node: Node, urls: Sequence[str], out: Path, *, chargers: int, prefix: str, duration_s: float,
) -> Proc:
    """The simulator fleet on ``node`` (``tests/cluster/churn.toml``): ``out``.json is its report,
    ``out``.jsonl its ledger."""
    argv = [sys.executable, "-m", "simulators", "run", *(f"--csms={u}" for u in urls),
            "--scenario", str(SCENARIO), "--chargers", str(chargers), "--id-prefix", prefix,
            "--duration", str(duration_s), "--report", f"{out}.json", "--ledger", f"{out}.jsonl",
            "--progress-interval", "5"]
    return node.spawn(argv, env=env(), name="fleet")


def api(node: Node, port: int = API_PORT) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=f"http://{node.addr}:{port}", timeout=5,
                             headers={"Authorization": f"Bearer {TOKEN}"})


async def until(what: str, check: Callable[[], Awaitable[bool]], timeout_s: float,
                procs: Sequence[Proc] = ()) -> float:
    """Poll ``check`` until it holds; the seconds it took. An HTTP error or status counts as "not
    yet". Fails (with the last such error and the logs of ``procs``) after ``timeout_s`` or when
    one of ``procs`` ends."""
    t0 = time.monotonic()
    last = "none"
    while True:
        try:
            if await check():
                return time.monotonic() - t0
        except (httpx.HTTPError, OSError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        for proc in procs:
            if not proc.running:
                raise AssertionError(f"{proc.name} ended (code {proc.popen.returncode}) waiting for "
                                     f"{what}\n{proc.tail()}")
        if time.monotonic() - t0 > timeout_s:
            logs = "\n".join(p.tail(15) for p in procs)
            raise AssertionError(f"not within {timeout_s} s: {what} (last error: {last})\n{logs}")
        await asyncio.sleep(0.25)


async def connected(client: httpx.AsyncClient, prefix: str) -> int:
    """How many stations whose id starts with ``prefix`` the API shows connected."""
    r = await client.get("/api/chargers", params={"connected": "true", "q": prefix, "limit": 1})
    r.raise_for_status()
    return int(r.headers["X-Total-Count"])


@dataclass(frozen=True, slots=True)
class Stored:
    """The transactions of some stations as PostgreSQL has them."""

    started: set[tuple[str, str]]  # (station, tx id)
    stopped: set[tuple[str, str]]
    events: set[tuple[str, str, int]]  # 2.0.1: (station, tx id, seqNo)


async def stored(pg_url: str, prefix: str) -> Stored:
    conn = await asyncpg.connect(pg_url, timeout=5)
    try:
        txs = await conn.fetch("SELECT station_id, tx_id, stopped_at FROM transactions "
                               "WHERE station_id LIKE $1", f"{prefix}%")
        events = await conn.fetch("SELECT station_id, tx_id, seq_no FROM transaction_events "
                                  "WHERE station_id LIKE $1", f"{prefix}%")
    finally:
        await conn.close()
    return Stored(
        started={(r["station_id"], r["tx_id"]) for r in txs},
        stopped={(r["station_id"], r["tx_id"]) for r in txs if r["stopped_at"] is not None},
        events={(r["station_id"], r["tx_id"], r["seq_no"]) for r in events},
    )


def acknowledged(path: Path) -> list[dict[str, Any]]:
    """The fleet's ledger lines for starts and stops (and every 2.0.1 event)."""
    return [x for x in ledger.read(str(path)) if x["event"] in ("Started", "Ended") or x["seq"] is not None]


def lost(acked: list[dict[str, Any]], db: Stored) -> list[dict[str, Any]]:
    """The acknowledged messages PostgreSQL has no trace of."""
    return [x for x in acked if not _kept(x, db)]


def _kept(x: dict[str, Any], db: Stored) -> bool:
    key = (x["station"], x["tx"])
    if x["tx"] is None or key not in db.started:
        return False
    if x["event"] == "Ended" and key not in db.stopped:
        return False
    return x["seq"] is None or (*key, x["seq"]) in db.events


def report(out: Path) -> dict[str, Any]:
    """The fleet's JSON report (``fleet(..., out)``)."""
    data: dict[str, Any] = json.loads(Path(f"{out}.json").read_text())
    return data
