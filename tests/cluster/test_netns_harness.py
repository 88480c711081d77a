"""The namespace cluster (``tests.cluster.netns``): nodes reach each other and the root namespace,
``infra`` serves PostgreSQL and MQTT v5 to them, and nothing is left behind however the owner ends:
closed, killed with SIGKILL (its reaper cleans up), or killed together with its reaper (the next
cluster removes the stale run, and leaves a live one alone)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiomqtt
import asyncpg
import pytest

from tests.cluster import netns
from tests.cluster.netns import MQTT_PORT, STATE_DIR, Cluster

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import os, signal, sys
from tests.cluster.netns import Cluster
c = Cluster.start(services=False)
c.node("a").spawn(["sleep", "600"])
if sys.argv[1] == "with-reaper":
    c._reaper.kill()
print(c.run, flush=True)
sys.stdin.read()
"""


def leftovers(run: str) -> dict[str, object]:
    """What of ``run`` still exists: namespaces, links, state file, processes."""
    links = [x for x in netns._links() if x.startswith(f"cs{run}")]
    spaces = [x for x in netns._namespaces() if x.startswith(f"{netns.NS_PREFIX}{run}-")]
    ps = subprocess.run(["pgrep", "-f", f"netns.py reap {run}"], capture_output=True, text=True).stdout
    return {"links": links, "namespaces": spaces, "state": (STATE_DIR / f"{run}.json").exists(),
            "reaper": ps.split()}


def gone(run: str) -> bool:
    return leftovers(run) == {"links": [], "namespaces": [], "state": False, "reaper": []}


def owner(mode: str) -> tuple[subprocess.Popen[str], str]:
    """A process that builds a cluster and waits; ``mode`` "with-reaper" kills the reaper first."""
    proc = subprocess.Popen([sys.executable, "-c", CHILD, mode], cwd=ROOT, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def wait_gone(run: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not gone(run):
        assert time.monotonic() < deadline, leftovers(run)
        time.sleep(0.1)


def test_nodes_reach_each_other_and_the_root_namespace_and_close_removes_everything(tmp_path: Path) -> None:
    with Cluster.start(tmp_path, services=False) as c:
        a, b = c.node("a"), c.node("b")
        assert a.addr != b.addr and a.addr.startswith(c.subnet_prefix + ".")
        server = a.spawn([sys.executable, "-m", "http.server", "8000", "--bind", a.addr])
        server.wait_port(8000)  # from the root namespace, over the bridge
        fetch = f"import urllib.request as u; u.urlopen('http://{a.addr}:8000/')"
        client = b.spawn([sys.executable, "-c", fetch])
        assert client.wait(10) == 0, client.tail()
        local = "import socket; socket.create_connection(('127.0.0.1', 8000), 2)"
        alone = b.spawn([sys.executable, "-c", local])
        assert alone.wait(10) != 0  # a's port is on a's address only: not on b's loopback
        sleeper = b.spawn(["sleep", "600"])
        assert leftovers(c.run)["namespaces"]
    assert gone(c.run), leftovers(c.run)
    assert server.popen.poll() is not None and sleeper.popen.poll() is not None


def test_the_reaper_cleans_up_after_an_owner_killed_with_sigkill() -> None:
    proc, run = owner("keep-reaper")
    assert leftovers(run)["namespaces"]
    proc.kill()
    proc.wait(10)
    wait_gone(run)


def test_the_next_cluster_removes_a_stale_run_and_leaves_a_live_one() -> None:
    stale, stale_run = owner("with-reaper")
    live, live_run = owner("keep-reaper")
    try:
        stale.send_signal(signal.SIGKILL)
        stale.wait(10)
        assert leftovers(stale_run)["namespaces"]  # nobody left to clean up
        assert json.loads((STATE_DIR / f"{stale_run}.json").read_text())["pid"] == stale.pid
        with Cluster.start(services=False):
            assert gone(stale_run), leftovers(stale_run)
            assert leftovers(live_run)["namespaces"] and leftovers(live_run)["state"]
    finally:
        for p in (stale, live):
            if p.poll() is None:
                assert p.stdin is not None
                p.stdin.close()  # the owner ends normally: atexit closes its cluster
                p.wait(20)
    wait_gone(live_run)


async def roundtrip_mqtt5(host: str) -> bytes:
    """Subscribe, publish and receive one message over MQTT v5 at ``host``."""
    async with aiomqtt.Client(host, MQTT_PORT, protocol=aiomqtt.ProtocolVersion.V5, timeout=5) as client:
        await client.subscribe("netns/check", qos=1)
        await client.publish("netns/check", b"hello", qos=1)
        async with asyncio.timeout(5):
            async for message in client.messages:
                assert isinstance(message.payload, bytes)
                return message.payload
    raise AssertionError("no message")


async def test_infra_serves_postgresql_and_mqtt_v5_to_every_node_and_the_broker_restarts(
    tmp_path: Path,
) -> None:
    with Cluster.start(tmp_path) as c:
        c.wait_pg_ready()
        conn = await asyncpg.connect(c.pg_url, timeout=5)  # from the root namespace: the bridge's .1
        try:
            assert await conn.fetchval("SELECT 1") == 1
        finally:
            await conn.close()
        query = f"import asyncio, asyncpg; asyncio.run(asyncpg.connect({c.pg_url!r}, timeout=5))"
        from_node = c.node("a").spawn([sys.executable, "-c", query])
        assert from_node.wait(30) == 0, from_node.tail()
        assert await roundtrip_mqtt5(c.infra.addr) == b"hello"
        c.stop_broker()
        with pytest.raises(aiomqtt.MqttError):
            await roundtrip_mqtt5(c.infra.addr)
        c.start_broker()
        assert await roundtrip_mqtt5(c.infra.addr) == b"hello"
