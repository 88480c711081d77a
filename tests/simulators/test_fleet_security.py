"""The fleet against secured CSMSs over real sockets: security profiles 2 and 3 on wss://,
registration through the API, failure hints, URL failover, and no stray worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from lifeline_child import watch_for_a_minute
from sim_support import QUICK, wait_until
from sim_support import running as sim_running

from csms.app import CsmsApp, running
from csms.security.passwords import hash_password
from ocppj.versions import OcppVersion
from simulators.certificates import issue_client_cert
from simulators.charger import VirtualCharger
from simulators.clock import SimClock
from simulators.fleet import FleetConfig, run_fleet
from simulators.metrics import Recorder
from simulators.model import ChargerSpec, EvseSpec
from simulators.registration import register_stations
from simulators.scenario import Scenario, load_scenario
from simulators.security import Endpoints, SecurityOptions
from tests.conftest import make_settings

pytestmark = pytest.mark.e2e
PATTERN = "pw-{id}-0123456789"  # 16+ characters for every station id
TOKEN = "operator-token-0123456789abcdef"


@dataclass
class Pki:
    server_ca: Path  # what the stations trust
    client_ca_cert: Path  # what the CSMS trusts and the fleet issues client certificates with
    client_ca_key: Path
    foreign_ca_cert: Path  # a CA the CSMS does not trust
    foreign_ca_key: Path
    tls: dict[str, Any]  # the CSMS's [tls] settings


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    server_ca, client_ca, foreign_ca = trustme.CA(), trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert("127.0.0.1", "localhost")
    paths = {name: folder / name for name in (
        "server-ca.pem", "server.pem", "server.key", "client-ca.pem", "client-ca.key", "foreign.pem",
        "foreign.key")}
    server_ca.cert_pem.write_to_path(str(paths["server-ca.pem"]))
    leaf.cert_chain_pems[0].write_to_path(str(paths["server.pem"]))
    leaf.private_key_pem.write_to_path(str(paths["server.key"]))
    client_ca.cert_pem.write_to_path(str(paths["client-ca.pem"]))
    client_ca.private_key_pem.write_to_path(str(paths["client-ca.key"]))
    foreign_ca.cert_pem.write_to_path(str(paths["foreign.pem"]))
    foreign_ca.private_key_pem.write_to_path(str(paths["foreign.key"]))
    tls = {"cert": str(paths["server.pem"]), "key": str(paths["server.key"]),
           "client_ca": str(paths["client-ca.pem"]), "port": 0}
    return Pki(paths["server-ca.pem"], paths["client-ca.pem"], paths["client-ca.key"], paths["foreign.pem"],
               paths["foreign.key"], tls)


MakeCsms = Callable[..., Awaitable[CsmsApp]]


@pytest.fixture
async def make_csms(tmp_path: Path) -> AsyncIterator[MakeCsms]:
    """Start CSMS instances, stopped after the test; keyword arguments are settings."""
    async with AsyncExitStack() as stack:
        count = 0

        async def make(**overrides: Any) -> CsmsApp:
            nonlocal count
            count += 1
            base: dict[str, Any] = {"auto_register": False, "db": str(tmp_path / f"csms{count}.sqlite3")}
            return await stack.enter_async_context(running(make_settings(tmp_path, **{**base, **overrides})))

        yield make


def _fleet(prefix: str, chargers: int = 4, seconds: float = 3.0) -> Scenario:
    smoke = load_scenario("smoke").with_options(protocol="mixed", chargers=chargers, duration_s=seconds,
                                                id_prefix=prefix)
    return replace(smoke, behaviour=replace(smoke.behaviour, reconnect_base_s=0.2, reconnect_max_s=0.5,
                                            stop_grace_s=3.0))


def _ids(s: Scenario) -> list[str]:
    return [s.station_id(i) for i in range(s.chargers)]


async def _register(app: CsmsApp, ids: list[str], profile: int, pattern: str | None = None) -> None:
    assert app.store is not None
    for sid in ids:
        hashed = await asyncio.to_thread(hash_password, pattern.replace("{id}", sid)) if pattern else None
        await app.store.upsert_station(sid, security_profile=profile, password_hash=hashed)


def _causes(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["cause"]: c for c in data["connect_failure_causes"]}


# --- profiles 2 and 3 over wss:// -------------------------------------------------------------------
async def test_profile2_and_profile3_fleets_of_both_versions_run_over_wss_without_errors(
    make_csms: MakeCsms, pki: Pki
) -> None:
    app = await make_csms(tls=pki.tls)
    basic, mutual = _fleet("BASIC"), _fleet("MTLS")
    await _register(app, _ids(basic), 2, PATTERN)
    await _register(app, _ids(mutual), 3)
    seen: set[str] = set()

    async def watch() -> None:
        while True:
            seen.update(sid for sid in _ids(basic) + _ids(mutual) if app.registry.get(sid) is not None)
            await asyncio.sleep(0.05)

    watcher = asyncio.create_task(watch())
    p2, p3 = await asyncio.gather(
        run_fleet(FleetConfig(csms_url=app.ocpp_tls_url, scenario=basic, security=SecurityOptions(
            password_pattern=PATTERN, ca_file=str(pki.server_ca), tls_resume=True))),
        run_fleet(FleetConfig(csms_url=app.ocpp_tls_url, scenario=mutual, security=SecurityOptions(
            ca_file=str(pki.server_ca), client_ca_cert=str(pki.client_ca_cert),
            client_ca_key=str(pki.client_ca_key)))),
    )
    watcher.cancel()
    for report, profile in ((p2, 2), (p3, 3)):
        data = report.data
        assert data["config"]["security"]["profile"] == profile
        assert data["connections"]["established"] == 4 and data["connections"]["failed"] == 0, data
        assert data["errors"]["total"] == 0, data["errors"]
        assert data["connect_failure_causes"] == []
        assert data["boots"]["accepted"] == 4 and data["config"]["protocol"] == "mixed"  # 2 of each
    assert seen == set(_ids(basic) + _ids(mutual))  # the CSMS had each of them on its wss:// endpoint


def _write_station_certs(pki: Pki, folder: Path, ids: list[str]) -> None:
    """<id>.pem / <id>.key issued by the client CA the CSMS trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    ca_cert = x509.load_pem_x509_certificate(pki.client_ca_cert.read_bytes())
    ca_key = load_pem_private_key(pki.client_ca_key.read_bytes(), None)
    folder.mkdir(exist_ok=True)
    for sid in ids:
        cert, key = issue_client_cert(sid, ca_cert, ca_key)  # type: ignore[arg-type]
        (folder / f"{sid}.pem").write_bytes(cert)
        (folder / f"{sid}.key").write_bytes(key)


async def test_profile3_cli_run_over_worker_processes_with_certificates_from_a_directory(
    make_csms: MakeCsms, pki: Pki, tmp_path: Path
) -> None:
    app = await make_csms(tls=pki.tls)
    fleet = _fleet("DIR", chargers=4)
    await _register(app, _ids(fleet), 3)
    _write_station_certs(pki, tmp_path / "certs", _ids(fleet))
    out = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--csms", app.ocpp_tls_url, "--chargers", "4",
        "--id-prefix", "DIR", "--protocol", "mixed", "--duration", "3", "--workers", "2",
        "--client-cert-dir", str(tmp_path / "certs"), "--ca-file", str(pki.server_ca), "--tls-resume",
        "--report", str(out), "--quiet", stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, stderr.decode()
    data = json.loads(out.read_text())
    assert data["config"]["security"] == {"profile": 3, "passwords": None, "ca_file": str(pki.server_ca),
                                          "client_certificates": "directory", "tls_resume": True}
    assert data["connections"]["established"] == 4 and data["errors"]["total"] == 0


async def test_profile2_stations_share_one_tls_context_and_a_later_one_resumes_the_session(
    make_csms: MakeCsms, pki: Pki
) -> None:
    app = await make_csms(tls=pki.tls)
    ids = ["SHARE1", "SHARE2"]
    await _register(app, ids, 2, PATTERN)
    endpoints = Endpoints([app.ocpp_tls_url], SecurityOptions(
        password_pattern=PATTERN, ca_file=str(pki.server_ca), tls_resume=True))
    recorder = Recorder()
    first, second = (
        VirtualCharger(ChargerSpec(sid, version, evses=(EvseSpec(),), seed=1), url=app.ocpp_tls_url,
                       clock=SimClock(), recorder=recorder, behaviour=QUICK, arrivals=None,
                       endpoints=endpoints)
        for sid, version in zip(ids, (OcppVersion.V16, OcppVersion.V201), strict=True)
    )
    async with sim_running(first):
        await wait_until(lambda: first.accepted, what="the first station")
        async with sim_running(second):
            await wait_until(lambda: second.accepted, what="the second station")
    endpoints.close()
    assert recorder.counters["tls_resumed"] == 1  # the second station, on the first one's ticket
    assert recorder.counters["connections_established"] == 2


async def test_a_profile3_station_resumes_its_tls_session_when_it_reconnects(
    make_csms: MakeCsms, pki: Pki, tmp_path: Path
) -> None:
    app = await make_csms(tls=pki.tls)
    await _register(app, ["RESUME1"], 3)
    _write_station_certs(pki, tmp_path / "certs", ["RESUME1"])
    endpoints = Endpoints([app.ocpp_tls_url], SecurityOptions(
        ca_file=str(pki.server_ca), client_cert_dir=str(tmp_path / "certs"), tls_resume=True))
    recorder = Recorder()
    spec = ChargerSpec("RESUME1", OcppVersion.V201, evses=(EvseSpec(),), seed=1)
    charger = VirtualCharger(spec, url=app.ocpp_tls_url, clock=SimClock(), recorder=recorder,
                             behaviour=QUICK, arrivals=None, endpoints=endpoints)
    async with sim_running(charger):
        await wait_until(lambda: charger.accepted and charger.online, what="connected")
        charger.inject("drop")
        await wait_until(lambda: recorder.counters["connections_established"] == 2 and charger.online,
                         what="reconnected")
    endpoints.close()
    assert recorder.counters["tls_resumed"] == 1  # the reconnect, not the first connection
    assert dict(recorder.connect_failures) == {}


async def test_wrong_passwords_fail_with_the_401_hint_and_exit_code_3(
    make_csms: MakeCsms, pki: Pki, tmp_path: Path
) -> None:
    app = await make_csms(tls=pki.tls)
    fleet = _fleet("WRONG", chargers=2)
    await _register(app, _ids(fleet), 2, PATTERN)
    out = tmp_path / "report.json"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--url", app.ocpp_tls_url, "--chargers", "2",
        "--id-prefix", "WRONG", "--duration", "2", "--password-pattern", "not-the-password-{id}",
        "--ca-file", str(pki.server_ca), "--report", str(out), "--quiet",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = stderr.decode()
    assert proc.returncode == 3, text
    assert "wrong or missing password (HTTP 401)" in text and "--password-pattern" in text
    causes = _causes(json.loads(out.read_text()))
    assert list(causes) == ["bad_password"]
    assert causes["bad_password"]["kinds"] == {"http_401": causes["bad_password"]["count"]}


async def test_each_connection_failure_is_grouped_by_cause_with_its_hint(
    make_csms: MakeCsms, pki: Pki
) -> None:
    app = await make_csms(tls=pki.tls)
    plain = _fleet("NOBODY", chargers=2, seconds=1.5)
    mutual = _fleet("FOREIGN", chargers=2, seconds=1.5)
    await _register(app, _ids(mutual), 3)
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        dead = f"ws://127.0.0.1:{s.getsockname()[1]}/ocpp"
    unknown, untrusted, foreign, refused = await asyncio.gather(
        run_fleet(FleetConfig(csms_url=app.ocpp_url, scenario=plain)),
        run_fleet(FleetConfig(csms_url=app.ocpp_tls_url, scenario=plain)),  # no --ca-file
        run_fleet(FleetConfig(csms_url=app.ocpp_tls_url, scenario=mutual, security=SecurityOptions(
            ca_file=str(pki.server_ca), client_ca_cert=str(pki.foreign_ca_cert),
            client_ca_key=str(pki.foreign_ca_key)))),
        run_fleet(FleetConfig(csms_url=dead, scenario=plain)),
    )
    hints = {
        "unknown_station": (unknown, "register the stations (csms-sim --register"),
        "server_certificate": (untrusted, "--ca-file"),
        "client_certificate": (foreign, "--client-ca-cert"),
        "refused": (refused, f"is the CSMS running at {dead}?"),
    }
    for cause, (report, hint) in hints.items():
        causes = _causes(report.data)
        assert list(causes) == [cause], report.data["connections"]["failures_by_kind"]
        assert hint in causes[cause]["hint"]
        assert report.connections_established == 0


# --- registration -------------------------------------------------------------------------------------
async def test_register_then_run_with_generated_passwords_over_wss(
    make_csms: MakeCsms, pki: Pki, tmp_path: Path
) -> None:
    app = await make_csms(tls=pki.tls, api_token=TOKEN)
    passwords = tmp_path / "passwords.csv"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--csms", app.ocpp_tls_url, "--chargers", "3",
        "--id-prefix", "REG", "--duration", "2", "--generate-passwords", str(passwords),
        "--ca-file", str(pki.server_ca), "--register", app.api_url, "--quiet",
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "CSMS_API_TOKEN": TOKEN},
    )
    try:
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = stderr.decode()
    assert proc.returncode == 0, text
    assert f"--register {app.api_url} (security profile 2): registered 3 stations" in text
    lines = passwords.read_text().splitlines()
    assert lines[0] == "id,password" and [line.split(",")[0] for line in lines[1:]] == [
        "REG00001", "REG00002", "REG00003"]
    assert oct(passwords.stat().st_mode & 0o777) == "0o600"
    async with httpx.AsyncClient(base_url=app.api_url, headers={"Authorization": f"Bearer {TOKEN}"}) as api:
        view = (await api.get("/api/chargers/REG00002")).json()
    assert view["security_profile"] == 2
    assert "connections failed" not in text  # every station got in with its generated password


@pytest.mark.parametrize(("extra", "error"), [
    (["--password-pattern", "{id}", "--api-token", TOKEN],
     "HTTP 400: invalid_payload: password: String should have at least 16 characters"),
    (["--password-pattern", "{id}-0123456789abcdef", "--api-token", "not-the-token-0123456789"],
     "HTTP 401: "),
])
async def test_registration_errors_are_reported_from_the_api(
    make_csms: MakeCsms, extra: list[str], error: str
) -> None:
    app = await make_csms(api_token=TOKEN)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--csms", app.ocpp_url, "--chargers", "1",
        "--duration", "1", *extra, "--register", app.api_url, "--quiet", stderr=asyncio.subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2  # the request was refused: fix the options
    assert f"(security profile 1): registered 0 stations, 1 failed (e.g. SIM00001: {error}" in stderr.decode()


async def test_registration_runs_concurrently_but_bounded() -> None:
    in_flight, peak, bodies = 0, 0, []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal in_flight, peak
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        bodies.append((head.split(b" ")[1].decode(), json.loads(await reader.readexactly(length))))
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.05)
        in_flight -= 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        port = server.sockets[0].getsockname()[1]
        ids = [f"B{i:02d}" for i in range(12)]
        result = await register_stations(f"http://127.0.0.1:{port}", ids, profile=3,
                                         password_for=lambda _: None, concurrency=3)
    assert result.registered == 12 and not result.failed
    assert peak == 3
    assert sorted(bodies) == [(f"/api/chargers/{sid}", {"security_profile": 3}) for sid in ids]


# --- several CSMS URLs ----------------------------------------------------------------------------------
async def test_stations_fail_over_to_the_next_url_when_theirs_goes_down(
    make_csms: MakeCsms, tmp_path: Path
) -> None:
    stack = AsyncExitStack()
    first = await stack.enter_async_context(running(make_settings(tmp_path, db=str(tmp_path / "first.db"))))
    second = await make_csms(auto_register=True)
    scenario = _fleet("FAIL", chargers=4, seconds=0)
    ids = _ids(scenario)
    stop = asyncio.Event()
    fleet = asyncio.create_task(run_fleet(FleetConfig(csms_url=first.ocpp_url, urls=(second.ocpp_url,),
                                                      scenario=scenario), stop=stop))
    try:
        await wait_until(lambda: all(first.registry.get(s) is not None for s in ids), what="all on the first")
        assert all(second.registry.get(s) is None for s in ids)
        await stack.aclose()  # the first CSMS goes away
        await wait_until(lambda: all(second.registry.get(s) is not None for s in ids), timeout=15,
                         what="all on the second")
    finally:
        stop.set()
        report = await asyncio.wait_for(fleet, 20)
        await stack.aclose()
    assert report.data["config"]["csms_urls"] == [first.ocpp_url, second.ocpp_url]
    failed = report.data["connections"]["failures_by_kind"]
    assert failed and all(kind.endswith(f"@{first.ocpp_url}") for kind in failed), failed
    assert report.data["connections"]["established"] >= 8
    assert report.protocol_errors == 0, report.data["errors"]


# --- no stray processes --------------------------------------------------------------------------------
def _descendants(pid: int) -> set[int]:
    """Live (not zombie) descendants of ``pid``, from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if fields[0] != "Z":
            parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    out = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if state[state.rindex(")") + 2] != "Z":
            out.add(pid)
    return out


async def test_workers_exit_when_the_parent_is_killed_and_the_csms_sees_the_stations_go(
    csms: CsmsApp, api: httpx.AsyncClient
) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", "run", "--csms", csms.ocpp_url, "--chargers", "6",
        "--workers", "3", "--duration", "0", "--quiet", "--id-prefix", "ORPHAN",
        stderr=asyncio.subprocess.DEVNULL,
    )
    workers: set[int] = set()
    try:
        async def all_connected() -> bool:
            views = (await api.get("/api/chargers", params={"limit": 100})).json()
            return sum(1 for v in views if v["id"].startswith("ORPHAN") and v["connected"]) == 6

        await wait_until(all_connected, timeout=30, what="6 stations connected")
        workers = _descendants(proc.pid)
        assert len(workers) >= 3  # the workers (and multiprocessing's resource tracker)
        os.kill(proc.pid, signal.SIGKILL)
        await proc.wait()
        await wait_until(lambda: not _alive(workers), timeout=5, what="no worker left")

        async def all_disconnected() -> bool:
            views = (await api.get("/api/chargers", params={"limit": 100})).json()
            return not any(v["connected"] for v in views if v["id"].startswith("ORPHAN"))

        await wait_until(all_disconnected, timeout=10, what="the CSMS to see the stations go")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        for pid in _alive(workers):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_whose_parent_pipe_closes_exits_even_without_the_kernel_signal() -> None:
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    reader, writer = ctx.Pipe(duplex=False)
    watching = ctx.Event()
    child = ctx.Process(target=watch_for_a_minute, args=(reader, watching), daemon=True)
    child.start()
    try:
        reader.close()
        assert watching.wait(30)
        writer.close()  # as if this process had died: the child sees end-of-file
        t0 = time.monotonic()
        child.join(10)
        assert child.exitcode == 70 and time.monotonic() - t0 < 2
    finally:
        if child.is_alive():
            child.kill()
            child.join(5)


# --- output to a closed pipe ----------------------------------------------------------------------------
@pytest.mark.parametrize(("argv", "read"), [
    (["topology", "--scenario", "model-city"], 16),  # like `| head -c 16`: 750 kB do not fit the pipe
    (["scenarios"], 0),  # like `| true`: the reader is gone before the first line
])
async def test_commands_writing_to_a_pipe_closed_early_end_quietly(argv: list[str], read: int) -> None:
    read_fd, write_fd = os.pipe()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "simulators", *argv, stdout=write_fd, stderr=asyncio.subprocess.PIPE,
    )
    os.close(write_fd)
    try:
        first = os.read(read_fd, read) if read else b""
        os.close(read_fd)
        _, stderr = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert len(first) == read
    assert proc.returncode == 0, stderr.decode()
    assert b"BrokenPipe" not in stderr and b"Traceback" not in stderr
