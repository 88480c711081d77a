"""The garbage-collector policy: survivors frozen, frozen garbage freed at a thaw, pauses timed.

These tests change the collector of the test process itself, so each one uninstalls the
policy in a ``finally``.
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import structlog
import websockets

from csms.app import running
from csms.config import load_settings
from csms.gcpolicy import GcPolicy, GcSettings, note_churn
from csms.metrics import Metrics
from tests.conftest import make_settings
from tests.e2e.test_restart_durability import free_port, wait_healthy


class Node:
    """A container that can take part in a reference cycle."""

    def __init__(self) -> None:
        self.other: Any = None


def cycle() -> weakref.ref[Node]:
    """Make an unreachable two-object cycle; return a weak reference to one of its objects."""
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def policy() -> Iterator[GcPolicy]:
    p = GcPolicy(GcSettings(freeze_interval_s=0, thaw_interval_s=0, thresholds=(700, 10, 10)))
    p.install()
    try:
        yield p
    finally:
        p.uninstall()


def test_install_freezes_sets_thresholds_and_uninstall_restores() -> None:
    before = gc.get_threshold()
    p = GcPolicy(GcSettings(thresholds=(1234, 7, 99)))
    p.install()
    try:
        assert gc.get_threshold() == (1234, 7, 99)
        assert gc.get_freeze_count() > 0
    finally:
        p.uninstall()
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_frozen_cycle_survives_collections_until_a_thaw(policy: GcPolicy) -> None:
    holder = Node()
    holder.other = Node()
    holder.other.other = holder.other  # a self-cycle, reachable for now
    ref = weakref.ref(holder.other)
    policy.freeze_survivors()
    holder.other = None  # now garbage, but frozen
    gc.collect()
    assert ref() is not None, "a frozen object must be out of the collector's sight"
    collected = policy.thaw()
    assert ref() is None
    assert collected >= 1
    assert policy.stats.thaws == 1
    assert gc.get_freeze_count() > 0, "the thaw freezes the survivors again"


def test_freeze_survivors_collects_young_garbage_first(policy: GcPolicy) -> None:
    ref = cycle()
    frozen = gc.get_freeze_count()
    policy.freeze_survivors()
    assert ref() is None, "garbage made before the freeze is collected, not frozen"
    kept = [Node() for _ in range(100)]
    policy.freeze_survivors()
    assert gc.get_freeze_count() >= frozen + len(kept)


def test_tick_thaws_when_due_and_freezes_otherwise() -> None:
    now = [0.0]
    p = GcPolicy(GcSettings(freeze_interval_s=10, thaw_interval_s=60), clock=lambda: now[0])
    p.install()
    try:
        freezes = p.stats.freezes
        now[0] = 10
        p.tick()
        assert (p.stats.freezes, p.stats.thaws) == (freezes + 1, 0)
        now[0] = 60
        p.tick()
        assert p.stats.thaws == 1
        now[0] = 70
        p.tick()
        assert p.stats.thaws == 1
    finally:
        p.uninstall()


def test_many_ended_connections_bring_the_thaw_forward_but_not_too_often() -> None:
    now = [0.0]
    settings = GcSettings(freeze_interval_s=1, thaw_interval_s=3600, thaw_after_churn=1000, min_thaw_gap_s=30)
    p = GcPolicy(settings, clock=lambda: now[0])
    p.install()
    try:
        p.thaw()  # counts from here
        note_churn(999)
        now[0] = 40
        assert not p.thaw_due()
        note_churn(1)
        assert p.thaw_due()
        p.tick()
        assert p.stats.thaws == 2 and not p.thaw_due()
        note_churn(5000)
        now[0] = 60  # 20 s after the last thaw: not yet
        p.tick()
        assert p.stats.thaws == 2
        now[0] = 70
        p.tick()
        assert p.stats.thaws == 3
    finally:
        p.uninstall()


def test_collections_are_timed_and_slow_ones_logged() -> None:
    p = GcPolicy(GcSettings(slow_pause_ms=1e-6))
    p.install()
    try:
        with structlog.testing.capture_logs() as logs:
            gc.collect(0)
            gc.collect(2)
        assert p.stats.collections[0] >= 1 and p.stats.collections[2] >= 1
        assert sum(p.stats.buckets[2]) == p.stats.collections[2]
        assert p.stats.pause_max_s[2] > 0
        pauses = [e for e in logs if e["event"] == "gc pause"]
        assert {e["generation"] for e in pauses} >= {0, 2}
        assert all(e["log_level"] == "warning" and e["pause_ms"] >= 0 for e in pauses)
    finally:
        p.uninstall()
    n = p.stats.collections[0]
    gc.collect(0)
    assert p.stats.collections[0] == n, "no callback after uninstall"


def test_metrics_expose_the_pauses(policy: GcPolicy) -> None:
    metrics = Metrics()
    metrics.watch_gc(policy.stats)
    gc.collect(1)
    policy.thaw()
    text = metrics.render().decode()
    assert 'csms_gc_pause_seconds_count{generation="1"}' in text
    assert 'csms_gc_pause_seconds_bucket{generation="2",le="+Inf"}' in text
    assert "csms_gc_thaws_total 1.0" in text
    freezes = next(line for line in text.splitlines() if line.startswith("csms_gc_freezes_total "))
    assert float(freezes.split()[1]) >= 1


def test_gc_settings_from_file_and_environment(tmp_path: Path) -> None:
    conf = tmp_path / "csms.toml"
    conf.write_text("[gc]\nfreeze_interval_s = 5\nthreshold0 = 2000\n")
    s = load_settings(conf, environ={"CSMS_GC_THAW_INTERVAL_S": "120"})
    assert s.gc.policy() == GcSettings(freeze_interval_s=5, thaw_interval_s=120, thresholds=(2000, 10, 1000))
    off = load_settings(None, {}, environ={"CSMS_GC_THAW_AFTER_CHURN": "0"})
    assert off.gc.policy().thaw_after_churn == 0
    with pytest.raises(Exception, match="threshold0"):
        load_settings(None, {"gc": {"threshold0": 0}}, environ={})


async def boot_and_leave(url: str) -> None:
    async with websockets.connect(url, subprotocols=["ocpp1.6"]) as ws:  # type: ignore[list-item]
        await ws.send(orjson.dumps([2, "1", "BootNotification", {
            "chargePointVendor": "V", "chargePointModel": "M"}]).decode())
        reply = orjson.loads(await ws.recv())
        assert reply[0] == 3 and reply[2]["status"] == "Accepted"
        await ws.send(orjson.dumps([2, "2", "Heartbeat", {}]).decode())
        assert orjson.loads(await ws.recv())[0] == 3


def live_sessions() -> int:
    return sum(1 for o in gc.get_objects() if type(o).__name__ == "StationSession")


async def test_connection_churn_leaves_no_session_behind_after_a_thaw(
    tmp_path: Path, policy: GcPolicy
) -> None:
    """Stations come and go while their sessions are frozen; one thaw frees all of them."""
    async with running(make_settings(tmp_path)) as app:
        url = app.ocpp_url
        for round_ in range(6):
            await asyncio.gather(*(boot_and_leave(f"{url}/CHURN{round_}-{k}") for k in range(40)))
            policy.freeze_survivors()  # the sessions of this round may be frozen while alive
        for _ in range(100):
            if len(app.registry) == 0:
                break
            await asyncio.sleep(0.02)
        assert len(app.registry) == 0
        policy.thaw()
        assert live_sessions() == 0, "a disconnected station's session outlived the thaw"


def start_serve(db: Path, ocpp_port: int, api_port: int, **env_overrides: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env.update(env_overrides)
    return subprocess.Popen(
        [sys.executable, "-m", "csms", "serve", "--db", str(db),
         "--ocpp-port", str(ocpp_port), "--api-port", str(api_port), "--auto-register",
         "--log-format", "json", "--log-level", "info"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


async def test_serve_runs_the_policy_and_reports_it(tmp_path: Path) -> None:
    """``csms serve`` freezes, thaws on its interval, and shows the pauses on /metrics."""
    ocpp_port, api_port = free_port(), free_port()
    proc = start_serve(tmp_path / "csms.sqlite3", ocpp_port, api_port,
                       CSMS_GC_FREEZE_INTERVAL_S="0.2", CSMS_GC_THAW_INTERVAL_S="1")
    try:
        await wait_healthy(api_port)
        url = f"ws://127.0.0.1:{ocpp_port}/ocpp"
        await asyncio.gather(*(boot_and_leave(f"{url}/SERVE{k}") for k in range(20)))
        async with httpx.AsyncClient() as client:
            for _ in range(100):  # bounded: at most ~5 s
                text = (await client.get(f"http://127.0.0.1:{api_port}/metrics")).text
                thaws = next(line for line in text.splitlines() if line.startswith("csms_gc_thaws_total"))
                if float(thaws.split()[1]) >= 2:
                    break
                await asyncio.sleep(0.05)
        assert float(thaws.split()[1]) >= 2
        assert 'csms_gc_pause_seconds_count{generation="1"}' in text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=15)
    thaws_logged = [orjson.loads(line) for line in err.splitlines() if b'"gc thaw"' in line]
    assert thaws_logged and all(e["pause_ms"] >= 0 and e["collected"] >= 0 for e in thaws_logged)
    assert proc.returncode == 0
