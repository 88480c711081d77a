"""Keepalive: one sweep pings quiet stations and drops those that stopped answering."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import websockets
from websockets.typing import Subprotocol

from csms.app import running
from csms.ocpp.keepalive import KeepaliveSweep
from tests.conftest import make_settings
from tests.security.peers import raw_upgrade


@dataclass(eq=False)
class FakePeer:
    station_id: str
    frames_in: int = 0
    keepalive_mark: tuple[int, float] = (0, 0.0)
    pings: list[asyncio.Future[float]] = field(default_factory=list)
    closed_with: int | None = None

    async def ping(self) -> Awaitable[float]:
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.pings.append(fut)
        return fut

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed_with = code


async def test_sweep_pings_only_quiet_peers_and_closes_the_silent_ones() -> None:
    now = [100.0]
    talking, answering, silent = FakePeer("T"), FakePeer("A"), FakePeer("S")
    peers = [talking, answering, silent]
    for p in peers:
        p.keepalive_mark = (0, now[0])
    sweep = KeepaliveSweep(lambda: peers, interval_s=60, timeout_s=0.05, clock=lambda: now[0])
    now[0] += 59
    talking.frames_in += 1
    assert sweep.sweep() == 0  # nobody quiet for a whole interval yet
    now[0] += 2  # 61 s since start; T spoke 2 s ago
    assert sweep.sweep() == 2
    await asyncio.sleep(0)
    assert not talking.pings and len(answering.pings) == 1 and len(silent.pings) == 1
    answering.pings[0].set_result(0.001)
    await asyncio.sleep(0.2)  # past the pong timeout
    assert silent.closed_with == 1011 and answering.closed_with is None and sweep.timeouts == 1
    now[0] += 30
    assert sweep.sweep() == 0  # the next ping comes one interval after the last


async def test_sweep_spreads_a_crowd_over_several_passes() -> None:
    peers = [FakePeer(f"P{i}") for i in range(25)]
    sweep = KeepaliveSweep(
        lambda: peers, interval_s=1, timeout_s=None, max_pings_per_step=10, clock=lambda: 5.0
    )
    assert [sweep.sweep(), sweep.sweep(), sweep.sweep(), sweep.sweep()] == [10, 10, 5, 0]
    await asyncio.sleep(0)
    assert all(len(p.pings) == 1 for p in peers)


async def test_each_tick_visits_a_slice_so_a_round_covers_everyone_once() -> None:
    peers = [FakePeer(f"P{i}") for i in range(100)]
    sweep = KeepaliveSweep(lambda: peers, interval_s=40, timeout_s=None, tick_s=1, clock=lambda: 50.0)
    assert sweep.period_s == 10  # a round: a quarter of the interval
    assert [sweep.step() for _ in range(11)] == [10] * 10 + [0]  # the 11th step starts a new round
    await asyncio.sleep(0)
    assert all(len(p.pings) == 1 for p in peers)


def _read_until_eof(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(4096):
        data += chunk
    return data


async def test_a_station_that_never_answers_pings_is_dropped_and_a_quiet_healthy_one_stays(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path, auto_register=True, ping_interval_s=0.3, ping_timeout_s=0.3)
    async with running(settings) as app:
        url = f"ws://127.0.0.1:{app.ocpp_port}/ocpp/QUIET"
        async with websockets.connect(url, subprotocols=[Subprotocol("ocpp1.6")], ping_interval=None) as ok:
            dead = await asyncio.to_thread(raw_upgrade, app.ocpp_port, "DEAD")
            try:
                dead.settimeout(10)
                data = await asyncio.to_thread(_read_until_eof, dead)  # a ping, then a close frame
            finally:
                dead.close()
            assert data[:1] == b"\x89", data[:8]  # FIN + ping
            close_at = data.index(b"\x88")  # FIN + close
            assert int.from_bytes(data[close_at + 2:close_at + 4], "big") == 1011
            await asyncio.sleep(0.5)
            assert app.registry.get("DEAD") is None
            assert app.registry.get("QUIET") is not None  # it answered every ping (websockets auto-pongs)
            await ok.send('[2,"h1","Heartbeat",{}]')
            assert '"currentTime"' in await asyncio.wait_for(ok.recv(), 5)
            metrics = app.metrics.render().decode()
            assert "csms_keepalive_timeouts_total 1.0" in metrics
            pings = next(x for x in metrics.splitlines() if x.startswith("csms_keepalive_pings_total "))
            assert float(pings.split()[1]) >= 2, pings


async def test_a_peer_is_not_pinged_again_while_its_ping_or_close_is_pending() -> None:
    now = [0.0]
    silent = FakePeer("S")
    sweep = KeepaliveSweep(lambda: [silent], interval_s=1, timeout_s=30, clock=lambda: now[0])
    now[0] = 1.0
    assert sweep.sweep() == 1
    await asyncio.sleep(0)
    now[0] = 5.0  # several intervals later, the first pong still not due to time out
    assert sweep.sweep() == 0 and len(silent.pings) == 1
    silent.pings[0].set_result(0.001)
    await asyncio.sleep(0)
    now[0] = 7.0
    assert sweep.sweep() == 1  # answered: pinged again once quiet for an interval
