"""Gateway processes (ADR 0005) over real sockets: the link's framing, refusals and TLS through a
gateway, keepalive in the gateway, a core restart under a live gateway, and a gateway killed
with SIGKILL while a transaction runs. (The OCPP, framing and malformed-frame suites also run
through a gateway: see ``tests.gateway.relay``.)"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import websockets

from csms.app import CsmsApp, running
from csms.config import TlsConfig
from csms.gateway.link import LinkProtocol, Op, frame
from csms.security.tls import server_context
from tests.conftest import make_settings
from tests.gateway.relay import csms_direct_or_via_gateway, gateway_for, socket_dir  # noqa: F401
from tests.ocpp.test_framing import RawStation, heartbeat
from tests.security.conftest import Pki, pki  # noqa: F401  (the session's throw-away PKI)
from tests.security.peers import (
    V16,
    V201,
    assert_over_the_pre_auth_cap,
    call,
    connect,
    heartbeat_ok,
    raw_upgrade,
    refusal,
)
from tests.security.test_station_auth import PASSWORD, failures, register
from tests.services import free_port


@pytest.fixture
def sock_path() -> Iterator[str]:
    folder = socket_dir()
    yield str(Path(folder) / "core.sock")
    shutil.rmtree(folder, ignore_errors=True)


async def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# --- the link's framing --------------------------------------------------------------------
class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written: list[bytes] = []
        self.aborted = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written.append(bytes(data))

    def abort(self) -> None:
        self.aborted = True

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        pass


async def test_frames_arrive_whole_and_in_order_however_the_stream_is_split() -> None:
    frames = [(Op.MSG, 7, b'[2,"a","Heartbeat",{}]'), (Op.OPEN, 1, b"{}"), (Op.CLOSED, 2 ** 32 - 1, b""),
              (Op.SEND, 3, "é€".encode() * 100)]
    stream = b"".join(frame(op, cid, body) for op, cid, body in frames)
    for cut in range(len(stream) + 1):
        got: list[tuple[int, int, bytes]] = []
        link = LinkProtocol(lambda op, cid, body, got=got: got.append((op, cid, body)), lambda exc: None)
        link.connection_made(_Transport())
        link.data_received(stream[:cut])
        link.data_received(stream[cut:])
        assert got == frames, cut
    byte_by_byte: list[tuple[int, int, bytes]] = []
    link = LinkProtocol(lambda op, cid, body: byte_by_byte.append((op, cid, body)), lambda exc: None)
    link.connection_made(_Transport())
    for i in range(len(stream)):
        link.data_received(stream[i:i + 1])
    assert byte_by_byte == frames


async def test_a_frame_with_an_impossible_length_drops_the_link() -> None:
    lost: list[Exception | None] = []
    link = LinkProtocol(lambda op, cid, body: None, lost.append)
    transport = _Transport()
    link.connection_made(transport)
    link.data_received(b"\x00\x00\x00\x02" + b"\x00" * 8)
    assert transport.aborted and link.closed
    assert len(lost) == 1 and "bad frame length" in str(lost[0])


async def test_frames_sent_in_one_loop_iteration_leave_in_one_write() -> None:
    link = LinkProtocol(lambda op, cid, body: None, lambda exc: None)
    transport = _Transport()
    link.connection_made(transport)
    for cid in range(50):
        link.send(Op.SEND, cid, b"[3,\"x\",{}]")
    await asyncio.sleep(0)
    assert len(transport.written) == 1
    got: list[int] = []
    reader = LinkProtocol(lambda op, cid, body: got.append(cid), lambda exc: None)
    reader.connection_made(_Transport())
    reader.data_received(transport.written[0])
    assert got == list(range(50))


# --- stations through a gateway ------------------------------------------------------------
@pytest.fixture
async def core(tmp_path: Path, sock_path: str) -> AsyncIterator[CsmsApp]:
    """A core without auto-registration, with a gateway socket."""
    async with running(make_settings(tmp_path, auto_register=False, gateway_socket=sock_path)) as app:
        yield app


@pytest.mark.parametrize("version", [V16, V201])
async def test_the_core_decides_every_upgrade_and_refusals_keep_their_headers(
    core: CsmsApp, sock_path: str, version: str
) -> None:
    await register(core, "P1", 1, PASSWORD)
    async with gateway_for(sock_path) as gw:
        url = f"ws://127.0.0.1:{gw.port}/ocpp"
        async with connect(url, "P1", version, password=PASSWORD) as ws:
            assert ws.subprotocol == version
            assert await heartbeat_ok(ws)
            assert core.registry.get("P1") is not None
            try:
                async with connect(url, "P1", version, password="wrong-horse-battery"):
                    raise AssertionError("accepted with a wrong password")
            except websockets.InvalidStatus as exc:
                assert exc.response.status_code == 401
                assert exc.response.headers["WWW-Authenticate"].startswith("Basic")
            assert await heartbeat_ok(ws)  # a refused attempt never disturbs the live session
        assert await refusal(url, "NOBODY", version) == 404
        assert await refusal(url.replace("/ocpp", "/other"), "P1", version, password=PASSWORD) == 404
        assert failures(core, "wrong_password") == 1


async def test_a_client_certificate_checked_by_a_tls_gateway_is_judged_by_the_core(
    core: CsmsApp, sock_path: str, pki: Pki  # noqa: F811
) -> None:
    await register(core, "P3", 3, None)
    tls = server_context(TlsConfig(cert=str(pki.server_cert), key=str(pki.server_key),
                                   client_ca=str(pki.client_ca_file)))
    async with gateway_for(sock_path, tls_context=tls) as gw:
        url = f"wss://127.0.0.1:{gw.port}/ocpp"
        async with connect(url, "P3", V201, tls=pki.client_context(pki.station_cert("P3"))) as ws:
            assert await heartbeat_ok(ws)
        assert await refusal(url, "P3", V201, tls=pki.client_context(pki.station_cert("OTHER"))) == 403
        assert await refusal(url, "P3", V201, tls=pki.client_context()) == 403
        assert failures(core, "client_cert_mismatch") == 1
        assert failures(core, "client_cert_required") == 1


async def test_csms_calls_reach_the_station_and_its_answers_come_back(
    tmp_path: Path, sock_path: str
) -> None:
    async with running(make_settings(tmp_path, gateway_socket=sock_path)) as app, \
            gateway_for(sock_path) as gw, connect(f"ws://127.0.0.1:{gw.port}/ocpp", "C1", V201) as ws:
        assert await heartbeat_ok(ws)
        session = app.registry.get("C1")
        assert session is not None
        gauge = app.metrics.registry.get_sample_value
        assert (gauge("csms_gateway_links"), gauge("csms_gateway_stations")) == (1, 1)
        assert stat.S_IMODE(os.stat(sock_path).st_mode) == 0o600  # only this user may speak for stations
        pending = asyncio.ensure_future(session.call("Reset", {"type": "Immediate"}))
        request = orjson.loads(await asyncio.wait_for(ws.recv(), 5))
        assert request[0] == 2 and request[2] == "Reset"
        await ws.send(orjson.dumps([3, request[1], {"status": "Scheduled"}]).decode())
        assert await asyncio.wait_for(pending, 5) == {"status": "Scheduled"}


async def test_the_gateway_pings_quiet_stations_and_drops_the_dead_ones(
    tmp_path: Path, sock_path: str
) -> None:
    async with running(make_settings(tmp_path, gateway_socket=sock_path)) as app, \
            gateway_for(sock_path, ping_interval_s=0.2, ping_timeout_s=0.3) as gw, \
            connect(f"ws://127.0.0.1:{gw.port}/ocpp", "ALIVE", V16) as ws:  # it answers pings itself
        dead = await asyncio.to_thread(raw_upgrade, gw.port, "DEAD")
        try:
            await eventually(lambda: app.registry.get("DEAD") is not None)
            await eventually(lambda: app.registry.get("DEAD") is None, timeout_s=10)
            assert app.registry.get("ALIVE") is not None
            assert await heartbeat_ok(ws)
        finally:
            dead.close()


async def test_a_core_restart_closes_the_gateways_stations_which_come_back_after_it(
    tmp_path: Path, sock_path: str
) -> None:
    settings = make_settings(tmp_path, gateway_socket=sock_path)
    async with running(settings) as first, gateway_for(sock_path) as gw:
        url = f"ws://127.0.0.1:{gw.port}/ocpp"
        ws = await connect(url, "R1", V201)
        assert await heartbeat_ok(ws)
        assert first.gateways is not None and len(first.gateways.links) == 1
        await first.stop()
        await asyncio.wait_for(ws.wait_closed(), 10)
        assert ws.close_code in (1001, 1011)
        await eventually(lambda: gw.link is None)
        assert await refusal(url, "R1", V201) == 503  # no core: no decision, no session
        async with running(settings) as second:
            await eventually(lambda: gw.link is not None)
            async with connect(url, "R1", V201) as again:
                assert await heartbeat_ok(again)
                assert second.registry.get("R1") is not None


# --- a gateway process killed with SIGKILL --------------------------------------------------
@contextmanager
def gateway_process(core_socket: str, port: int, *extra: str) -> Iterator[subprocess.Popen[bytes]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "csms", "gateway", "--core", core_socket, "--ocpp-port", str(port),
         "--log-level", "warning", *extra], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def connect_when_up(url: str, station_id: str, timeout_s: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await connect(url, station_id, V201)
        except OSError:
            assert time.monotonic() < deadline, f"{url} never came up"
            await asyncio.sleep(0.1)


def tx_event(kind: str, seq: int, wh: float) -> dict[str, Any]:
    return {
        "eventType": kind, "timestamp": "2026-12-03T08:00:00Z", "seqNo": seq,
        "triggerReason": {"Started": "Authorized", "Ended": "StopAuthorized"}.get(kind, "MeterValuePeriodic"),
        "transactionInfo": {"transactionId": "GW-TX-1",
                            **({"stoppedReason": "Local"} if kind == "Ended" else {})},
        "evse": {"id": 1, "connectorId": 1},
        "meterValue": [{"timestamp": "2026-12-03T08:00:00Z", "sampledValue": [
            {"value": wh, "measurand": "Energy.Active.Import.Register", "unitOfMeasure": {"unit": "Wh"}}]}],
    }


async def test_a_killed_gateway_loses_no_acknowledged_transaction_event(
    tmp_path: Path, sock_path: str
) -> None:
    async with running(make_settings(tmp_path, gateway_socket=sock_path)) as app:
        assert app.gateways is not None and app.store is not None
        first_port, second_port = free_port(), free_port()
        with gateway_process(sock_path, first_port) as first:
            ws = await connect_when_up(f"ws://127.0.0.1:{first_port}/ocpp", "K1")
            for seq, (kind, wh) in enumerate([("Started", 1000.0), ("Updated", 1500.0)]):
                assert (await call(ws, "TransactionEvent", tx_event(kind, seq, wh)))[0] == 3
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            await asyncio.wait_for(ws.wait_closed(), 10)
            await eventually(lambda: app.registry.get("K1") is None)
            assert not app.gateways.links
        with gateway_process(sock_path, second_port):
            ws = await connect_when_up(f"ws://127.0.0.1:{second_port}/ocpp", "K1")
            async with ws:
                for seq, (kind, wh) in enumerate([("Updated", 2000.0), ("Ended", 2500.0)], start=2):
                    assert (await call(ws, "TransactionEvent", tx_event(kind, seq, wh)))[0] == 3
            tx = await app.store.get_transaction("K1", "GW-TX-1")
            assert tx is not None
            assert (tx.meter_start_wh, tx.meter_stop_wh, tx.last_seq_no) == (1000.0, 2500.0, 3)
            assert tx.stopped_at is not None and "seq_gap" not in tx.flags


def test_the_gateway_command_explains_itself_and_needs_a_core() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    helped = subprocess.run([sys.executable, "-m", "csms", "gateway", "--help"], capture_output=True,
                            text=True, env=env, timeout=60)
    assert helped.returncode == 0 and "--core" in helped.stdout and "--reuse-port" in helped.stdout
    bare = subprocess.run([sys.executable, "-m", "csms", "gateway"], capture_output=True, text=True, env=env,
                          timeout=60)
    assert bare.returncode == 2 and "--core PATH" in bare.stderr


async def test_a_malformed_open_gets_a_500_and_the_link_keeps_working(core: CsmsApp, sock_path: str) -> None:
    answers: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()
    loop = asyncio.get_running_loop()
    _, link = await loop.create_unix_connection(
        lambda: LinkProtocol(lambda op, cid, body: answers.put_nowait((op, cid, body)), lambda exc: None),
        sock_path,
    )
    link.send(Op.OPEN, 1, b'{"path": "/ocpp/X"}')  # no subprotocols, no ip, ...
    link.send(Op.MSG, 99, b'[2,"a","Heartbeat",{}]')  # for no station: ignored
    op, cid, body = await asyncio.wait_for(answers.get(), 5)
    assert (op, cid, orjson.loads(body)["status"]) == (Op.REFUSE, 1, 500)
    good = {"path": "/ocpp/NOBODY", "offered": [V16], "authorization": [], "ip": "127.0.0.1", "tls": False}
    link.send(Op.OPEN, 2, orjson.dumps(good))
    op, cid, body = await asyncio.wait_for(answers.get(), 5)
    assert (op, cid, orjson.loads(body)["status"]) == (Op.REFUSE, 2, 404)  # auto-registration is off
    link.close()


async def test_a_gateway_process_gets_the_bare_subprotocol_in_accept(tmp_path: Path, sock_path: str) -> None:
    """Gateways of an older release put ACCEPT's whole body into the 101's subprotocol header:
    only the in-process endpoint's loopback gets the station id with it."""
    async with running(make_settings(tmp_path, auto_register=True, gateway_socket=sock_path)):
        answers: asyncio.Queue[tuple[int, int, bytes]] = asyncio.Queue()
        _, link = await asyncio.get_running_loop().create_unix_connection(
            lambda: LinkProtocol(lambda op, cid, body: answers.put_nowait((op, cid, body)), lambda exc: None),
            sock_path,
        )
        facts = {"path": "/ocpp/OLDGW", "offered": [V201], "authorization": [], "ip": "127.0.0.1",
                 "tls": False}
        link.send(Op.OPEN, 1, orjson.dumps(facts))
        assert await asyncio.wait_for(answers.get(), 5) == (Op.ACCEPT, 1, V201.encode())
        link.close()


async def test_a_station_that_gives_up_while_the_core_decides_leaves_nothing_behind(sock_path: str) -> None:
    """A core that never answers: the upgrade times out, the core hears CLOSED, nothing is kept."""
    heard: list[tuple[int, int]] = []
    loop = asyncio.get_running_loop()
    silent = await loop.create_unix_server(
        lambda: LinkProtocol(lambda op, cid, body: heard.append((op, cid)), lambda exc: None), sock_path
    )
    try:
        async with gateway_for(sock_path, open_timeout_s=0.3) as gw:
            with pytest.raises((websockets.InvalidMessage, TimeoutError, OSError)):
                async with connect(f"ws://127.0.0.1:{gw.port}/ocpp", "SLOW", V16):
                    pass
            await eventually(lambda: (Op.CLOSED, 1) in heard)
            assert heard[0] == (Op.OPEN, 1)
            assert not gw._opening and not gw._stations
    finally:
        silent.close()


# --- one station's misbehaviour stays its own ----------------------------------------------
async def test_a_binary_frame_that_is_not_utf8_is_answered_and_disturbs_no_one(
    csms: Any, version: str = V201
) -> None:
    async with connect(csms.ocpp_url, "BIN-A", version) as a, connect(csms.ocpp_url, "BIN-B", version) as b:
        await a.send(b'\xff\xfe[2,"x","Heartbeat",{}]')  # a binary frame, not even UTF-8
        answer = orjson.loads(await asyncio.wait_for(a.recv(), 5))
        assert answer[0] == 4 and answer[2] in ("FormationViolation", "RpcFrameworkError")  # 1.6 / 2.0.1
        assert await heartbeat_ok(a)
        assert await heartbeat_ok(b)


async def test_a_station_that_does_not_read_is_paused_not_buffered(tmp_path: Path, sock_path: str) -> None:
    """It may send as fast as it likes; what waits for it in the gateway stays small, and
    every answer arrives, in order, once it reads."""
    async with running(make_settings(tmp_path, gateway_socket=sock_path)), gateway_for(sock_path) as gw:
        def flood() -> tuple[int, list[str]]:
            with RawStation(gw.port, "DEAF") as st_:
                st_.sock.settimeout(3)
                ids = [f"h{i}" for i in range(30_000)]
                sent = 0
                with contextlib.suppress(TimeoutError):  # the gateway stopped reading: TCP pushed back
                    for i in range(0, len(ids), 500):
                        st_.sock.sendall(b"".join(heartbeat(x) for x in ids[i:i + 500]))
                        sent = i + 500
                queued = max((len(s.outbox or ()) for s in gw._stations.values()), default=0)
                st_.sock.settimeout(30)
                return queued, st_.answers(sent) if sent < len(ids) else ids
        queued, answered = await asyncio.to_thread(flood)
        assert queued <= 64
        assert answered == sorted(answered, key=lambda x: int(x[1:]))


async def test_connections_that_never_upgrade_are_capped_per_ip_in_the_gateway(
    core: CsmsApp, sock_path: str
) -> None:
    """Slowloris through a gateway: the gateway counts its own un-upgraded connections and aborts
    the one over the cap at once; upgraded stations do not count, and freed slots are reused."""
    assert core.store is not None
    for station_id in ("PRE-LIVE", "PRE-CAPPED", "PRE-AFTER"):
        await core.store.upsert_station(station_id)
    async with gateway_for(sock_path, max_pre_auth_per_ip=3, open_timeout_s=30) as gw:
        url = f"ws://127.0.0.1:{gw.port}/ocpp"
        async with connect(url, "PRE-LIVE", V16) as live:  # upgraded: not counted
            idle = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(3)]
            try:
                await asyncio.sleep(0.2)
                await assert_over_the_pre_auth_cap(gw.port, url, "PRE-CAPPED")
                assert await heartbeat_ok(live)
            finally:
                for s in idle:
                    s.close()
            await asyncio.sleep(0.2)
            async with connect(url, "PRE-AFTER", V16) as after:  # slots are free again
                assert await heartbeat_ok(after)


async def test_a_gateway_process_exports_its_own_metrics(tmp_path: Path, sock_path: str) -> None:
    """``csms gateway --metrics-port``: its stations, its link, its collector, its caps, its loop."""
    async with running(make_settings(tmp_path, gateway_socket=sock_path)):
        port, metrics_port = free_port(), free_port()
        with gateway_process(sock_path, port, "--metrics-port", str(metrics_port)):
            ws = await connect_when_up(f"ws://127.0.0.1:{port}/ocpp", "MET-1")
            async with ws, httpx.AsyncClient() as client:
                for _ in range(40):  # bounded: ~2 s, until the loop-lag watcher woke once
                    text = (await client.get(f"http://127.0.0.1:{metrics_port}/metrics")).text
                    values = {line.split()[0]: float(line.split()[1]) for line in text.splitlines()
                              if line and not line.startswith("#")}
                    if values.get("csms_event_loop_lag_seconds_count", 0) >= 1:
                        break
                    await asyncio.sleep(0.05)
            assert values["csms_gateway_connected_stations"] == 1
            assert values["csms_gateway_core_linked"] == 1
            assert "csms_keepalive_pings_total" in values and "csms_keepalive_timeouts_total" in values
            assert all(f'csms_gc_pause_seconds_count{{generation="{g}"}}' in values for g in range(3))
            assert values["csms_gc_freezes_total"] >= 1  # at start-up
            assert "# TYPE csms_admission_refused_total counter" in text
            assert values["csms_event_loop_lag_seconds_count"] >= 1  # its own loop, watched (csms.looplag)


async def test_refused_and_closed_connections_leave_no_reference_cycles_in_the_gateway(
    core: CsmsApp, sock_path: str
) -> None:
    """Each connection must be freed by reference counting when it ends: a cycle would wait for
    the cyclic collector, and with survivors frozen (csms.gcpolicy) for the next thaw."""
    assert core.store is not None
    await core.store.upsert_station("CYCLE-OK")
    async with gateway_for(sock_path) as gw:
        gc.collect()
        gc.disable()
        try:
            for i in range(20):  # unknown stations: 404 from the core
                assert await refusal(f"ws://127.0.0.1:{gw.port}/ocpp", f"CYCLE-NO{i}", V16) == 404
            async with connect(f"ws://127.0.0.1:{gw.port}/ocpp", "CYCLE-OK", V16) as ws:
                assert await heartbeat_ok(ws)
            await eventually(lambda: not gw._stations)
            await asyncio.sleep(0.3)
            # this gateway's connections (other tests' in-process ones may still be around)
            relayed = "StationProtocol"
            left = [o for o in gc.get_objects() if type(o).__qualname__ == relayed]
            assert not left, f"{len(left)} ended connections are kept alive by reference cycles"
        finally:
            gc.enable()


def _upgrade_and_leave(port: int, station_id: str) -> bytes:
    """One raw upgrade: the status line's code; an accepted one is closed cleanly (1000)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall((
            f"GET /ocpp/{station_id} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: ocpp1.6\r\n\r\n"
        ).encode())
        head = sock.recv(4096)
        if head.startswith(b"HTTP/1.1 101"):
            sock.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]))  # masked close, 1000
            sock.recv(4096)
        return head.split(b" ")[1]


def test_under_uvloop_ended_connections_leave_no_cyclic_garbage_at_all(tmp_path: Path) -> None:
    """What ``csms serve``/``csms gateway`` run on (uvloop): a refused or closed connection, in
    the core's own endpoint or through a gateway, is freed by reference counting alone. This is
    what lets the collector policy thaw rarely (csms.gcpolicy, ``thaw_after_churn``)."""
    import uvloop

    async def scenario() -> dict[str, tuple[set[bytes], int]]:
        folder = socket_dir()
        sock = str(Path(folder) / "core.sock")
        found: dict[str, tuple[set[bytes], int]] = {}
        try:
            settings = make_settings(tmp_path, gateway_socket=sock, auto_register=False)
            async with running(settings) as app, gateway_for(sock) as gw:
                assert app.store is not None
                for i in range(30):
                    await app.store.upsert_station(f"UV-OK{i}")
                for name, port in (("in-process", app.ocpp_port), ("gateway", gw.port)):
                    for kind in ("NO", "OK"):  # refused (404), then accepted and closed
                        await asyncio.to_thread(_upgrade_and_leave, port, f"UV-{kind}0")  # warm-up
                        await asyncio.sleep(0.3)
                        gc.collect()
                        gc.disable()
                        try:
                            codes = {await asyncio.to_thread(_upgrade_and_leave, port, f"UV-{kind}{i}")
                                     for i in range(1, 30)}
                            await asyncio.sleep(0.5)
                            found[f"{name} {kind}"] = (codes, gc.collect())
                        finally:
                            gc.enable()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        return found

    found = uvloop.run(scenario())
    assert {k: v[0] for k, v in found.items()} == {
        "in-process NO": {b"404"}, "in-process OK": {b"101"}, "gateway NO": {b"404"}, "gateway OK": {b"101"},
    }
    assert {k: v[1] for k, v in found.items()} == dict.fromkeys(found, 0)
