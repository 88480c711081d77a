"""One, two and three core nodes behind one gateway node, on one machine: the same fleet each time.

For each count of core nodes, on fresh parts: a private Mosquitto on a free port, a fresh
PostgreSQL database (created on ``--pg``, dropped after), ``csms serve --bus --no-ocpp`` core
nodes, one ``csms gateway --bus`` node, and a ``csms-sim run`` fleet against the gateway. Every
station starts a transaction at once and sends meter values every ``--meter-interval`` seconds
for the whole run (1.6 MeterValues, 2.0.1 TransactionEvent Updated; one call outstanding per
station, so a short interval makes a closed loop that runs as fast as the cluster answers).
Nothing is pinned: every process shares the machine's cores, as on a single host.

After ``--warmup`` seconds, over ``--duration`` seconds, from /proc and the fleet's live metrics:

* ``calls_s`` — answered calls per second (the fleet's count over the window), ``p99_ms`` —
  the fleet report's p99 round trip (whole run, the stations' boots included), ``errors`` — its
  failed calls, ``to_stations`` — calls the CSMS sent the stations (whole run; their CPU is in
  the CSMS columns but they are not counted as calls);
* ``cores_us`` ``gw_us`` ``broker_us`` ``pg_us`` ``fleet_us`` — CPU per call of each process
  group: every core node, the gateway, Mosquitto, the PostgreSQL backends connected to the
  run's database (the server's shared writer processes are not counted), the fleet;
* ``csms_us`` — cores + gateway + broker + PostgreSQL: the CSMS side's CPU per call;
* ``core_split`` — each core node's share of the cores' CPU, ``stations_per_core`` — the
  stations each serves (the broker's shared subscription spreads new stations);
* ``busy`` — the machine's busy CPU over the window in cores, ``others`` — the part of it
  no process of the run used (other work on the host), ``steal`` — the share of the machine's
  CPU time the hypervisor gave to other tenants;
* ``core_idle_pct`` — one core node's CPU with no station connected (% of a core, ``--idle``);
  ``setup_s`` and ``connect_s`` — start-up of the parts, connection of the whole fleet.

    python -m bench.cluster                      # 1, 2, 3 cores; 20 s windows (2-3 minutes)
    python -m bench.cluster --quick              # 1, 2, 3 cores; 4 s windows (under a minute)
    python -m bench.cluster --chargers 300 --meter-interval 1   # paced: ~300 calls/s offered
    python -m bench.cluster --cores 0            # the same fleet on one process: no broker hop
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from bench.procs import CLK_TCK, StealMeter, cpu_seconds, free_port, load_average, spawn, wait_port
from bench.report import print_table

PG_DEFAULT = "postgresql://postgres@127.0.0.1:5432"
REPO = str(Path(__file__).resolve().parents[1])

SCENARIO = """\
name = "cluster-bench"
description = "every EVSE charges from the start, meter values every meter_interval_s"
seed = 11
duration_s = 0

[fleet]
chargers = {chargers}
protocol = "{protocol}"
v201_share = 0.5
id_prefix = "CB"
ramp_up_per_s = 1000
call_timeout_s = 30
reconnect_base_s = 0.5
reconnect_max_s = 5
stop_grace_s = 2

[charger]
meter_interval_s = {meter_interval}
heartbeat_interval_s = 0

[[models]]
name = "ac22"
model = "AC22-1"
evses = 1
max_current_a = 32

[id_tags]
prefix = "CBTAG"
count = 50

[arrivals]
first_within_s = 0.5
first_share = 1.0
sessions_per_day = 0
daily_profile = "flat"
dwell_mean_s = 86400
dwell_min_s = 86400
dwell_max_s = 86400
"""


@dataclass(frozen=True, slots=True)
class Fleet:
    chargers: int = 200
    meter_interval_s: float = 0.05
    protocol: str = "mixed"
    workers: int = 1


def child_env() -> dict[str, str]:
    """The children's environment: no ``CSMS_`` settings, and this checkout first on the path (they
    run in a temporary directory, where the files a core node writes beside itself go)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CSMS_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
    return env


def _psql(pg: str, sql: str, db: str = "postgres") -> str:
    out = subprocess.run(["psql", f"{pg}/{db}", "-v", "ON_ERROR_STOP=1", "-Atqc", sql],
                         capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise RuntimeError(f"psql {sql!r}: {out.stderr.strip()}")
    return out.stdout


def machine_busy_seconds() -> float:
    """CPU seconds every core spent on work (user, nice, system, irq, softirq) so far."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    return sum(int(fields[i]) for i in (0, 1, 2, 5, 6)) / CLK_TCK


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except (OSError, IndexError, ValueError):
        return 0.0


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the fleet's worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{p}/task").iterdir():
                with contextlib.suppress(OSError):
                    todo += [int(c) for c in (task / "children").read_text().split()]
    return out


class Cluster:
    """Broker, database, ``cores`` core nodes and one gateway node; ``close()`` kills them all
    and drops the database (also when starting failed half-way)."""

    def __init__(self, cores: int, pg: str, tmp: str) -> None:
        self.pg = pg
        self.tmp = tmp
        self.db = f"csms_bench_{secrets.token_hex(4)}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.db_created = False
        try:
            self._start(cores)
        except BaseException:
            self.close()
            raise

    def _spawn(self, name: str, cmd: list[str]) -> subprocess.Popen[bytes]:
        with open(os.path.join(self.tmp, f"{name}.log"), "wb") as log:
            proc = spawn(cmd, env=child_env(), cwd=self.tmp, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        return proc

    def _start_single(self) -> None:
        """``cores`` 0: one ``csms serve`` process holding the stations itself (no broker, no gateway)."""
        _psql(self.pg, f'create database "{self.db}"')
        self.db_created = True
        self.ocpp_port, api = free_port(), free_port()
        conf = os.path.join(self.tmp, "csms.toml")
        Path(conf).write_text("[limits]\nmax_pre_auth_per_ip = 0\n")
        proc = self._spawn("core-1", [
            sys.executable, "-m", "csms", "serve", "--db", f"{self.pg}/{self.db}", "--ocpp-port",
            str(self.ocpp_port), "--api-port", str(api), "--auto-register", "--accept-unknown-tags",
            "--config", conf, "--log-level", "warning", "--log-format", "json"])
        wait_port(self.ocpp_port, timeout_s=90, proc=proc)
        wait_port(api, timeout_s=30, proc=proc)
        self.api_ports = [api]

    def _start(self, cores: int) -> None:
        if cores == 0:
            self._start_single()
            return
        self.broker_port = free_port()
        conf = os.path.join(self.tmp, "mosquitto.conf")
        Path(conf).write_text(
            f"listener {self.broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
            "max_queued_messages 100000\nlog_type error\nlog_type warning\n")
        broker = self._spawn("broker", ["mosquitto", "-c", conf])
        _psql(self.pg, f'create database "{self.db}"')
        self.db_created = True
        wait_port(self.broker_port, proc=broker)
        bus = f"mqtt://127.0.0.1:{self.broker_port}"
        common = ["--log-level", "warning", "--log-format", "json"]
        self.ocpp_port = free_port()
        gw_conf = os.path.join(self.tmp, "gateway.toml")
        # The whole fleet connects from one address: no cap on its connections awaiting a decision.
        Path(gw_conf).write_text("[limits]\nmax_pre_auth_per_ip = 0\n")
        gw = self._spawn("gateway", [sys.executable, "-m", "csms", "gateway", "--bus", bus,
                                     "--node-id", "gw-1", "--ocpp-port", str(self.ocpp_port),
                                     "--config", gw_conf, *common])
        # Cores all at once: the first to migrate the fresh database holds the others back
        # (advisory lock); the gateway refuses stations until a core is online.
        started: list[tuple[int, subprocess.Popen[bytes]]] = []
        for i in range(1, cores + 1):
            api = free_port()
            started.append((api, self._spawn(f"core-{i}", [
                sys.executable, "-m", "csms", "serve", "--db", f"{self.pg}/{self.db}", "--bus", bus,
                "--node-id", f"core-{i}", "--api-port", str(api), "--no-ocpp", "--auto-register",
                "--accept-unknown-tags", *common])))
        wait_port(self.ocpp_port, timeout_s=60, proc=gw)
        for api, proc in started:
            wait_port(api, timeout_s=90, proc=proc)
        self.api_ports = [api for api, _ in started]
        self._wait_online(cores, timeout_s=60)

    def _wait_online(self, cores: int, timeout_s: float) -> None:
        """Until the broker holds ``cores`` core and one gateway presence marked online: every core
        has its shared subscription before the first station arrives."""
        from paho.mqtt.client import Client, MQTTMessage
        from paho.mqtt.enums import CallbackAPIVersion

        online: dict[str, dict[str, Any]] = {}

        def on_message(_c: Client, _u: Any, msg: MQTTMessage) -> None:
            with contextlib.suppress(ValueError):
                online[msg.topic] = orjson.loads(msg.payload)

        client = Client(CallbackAPIVersion.VERSION2)
        client.on_message = on_message
        client.on_connect = lambda c, *_: c.subscribe("csms/node/+", qos=1)
        client.connect("127.0.0.1", self.broker_port)
        client.loop_start()
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline:
                roles = [p.get("role") for p in list(online.values()) if p.get("online")]
                if roles.count("core") == cores and roles.count("gateway") == 1:
                    return
                for name, proc in self.procs.items():
                    if proc.poll() is not None:
                        raise RuntimeError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
                time.sleep(0.05)
            raise TimeoutError(f"{cores} cores and a gateway not online after {timeout_s:.0f}s: {online}")
        finally:
            client.loop_stop()
            client.disconnect()

    def log_tail(self, name: str, lines: int = 3) -> str:
        with contextlib.suppress(OSError):
            text = Path(os.path.join(self.tmp, f"{name}.log")).read_text(errors="replace")
            return " | ".join(text.strip().splitlines()[-lines:])
        return ""

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ocpp_port}/ocpp"

    def core_pids(self) -> list[int]:
        return [p.pid for n, p in sorted(self.procs.items()) if n.startswith("core-")]

    def pg_pids(self) -> list[int]:
        rows = _psql(self.pg, f"select pid from pg_stat_activity where datname = '{self.db}'")
        return [int(x) for x in rows.split()]

    def stations_per_core(self) -> list[int]:
        """Stations each core node serves now (its ``csms_connected_stations``)."""
        out = []
        for port in self.api_ports:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
                text = resp.read().decode()
            out.append(round(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                                 if line.startswith("csms_connected_stations"))))
        return out

    def close(self) -> None:
        """Kill the gateway, the cores, then the broker (last: nobody logs its loss)."""
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(Exception):
                proc.wait(10)
        if self.db_created:
            with contextlib.suppress(Exception):
                _psql(self.pg, f'drop database if exists "{self.db}" with (force)')
            self.db_created = False


class Sample:
    """CPU seconds of every process group at one moment, and the fleet's call count."""

    def __init__(self, cluster: Cluster, fleet: subprocess.Popen[bytes], metrics_port: int,
                 pg_pids: list[int]) -> None:
        self.at = time.monotonic()
        self.cores = [_cpu_or_zero(pid) for pid in cluster.core_pids()]
        gateway, broker = cluster.procs.get("gateway"), cluster.procs.get("broker")
        self.gateway = _cpu_or_zero(gateway.pid) if gateway else 0.0
        self.broker = _cpu_or_zero(broker.pid) if broker else 0.0
        self.pg = {pid: _cpu_or_zero(pid) for pid in pg_pids}
        self.fleet = sum(_cpu_or_zero(p) for p in _tree(fleet.pid))
        self.busy = machine_busy_seconds()
        counts = _fleet_metrics(metrics_port)
        self.calls, self.errors = counts["calls"], counts["errors"]


def _fleet_metrics(port: int) -> dict[str, float]:
    """The fleet's live totals: ``calls``, ``errors`` (failed calls) and ``connected``."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out = {"calls": 0.0, "errors": 0.0, "connected": 0.0}
    for line in text.splitlines():
        for prefix, key in (("csms_sim_calls_total{", "calls"), ("csms_sim_call_errors_total{", "errors"),
                            ("csms_sim_connected ", "connected")):
            if line.startswith(prefix):
                out[key] += float(line.rsplit(" ", 1)[1])
    return out


def _wait_connected(port: int, chargers: int, fleet: subprocess.Popen[bytes], timeout_s: float) -> float:
    """Seconds until every station is connected (the window opens on the whole fleet)."""
    t0 = time.monotonic()
    while _fleet_metrics(port)["connected"] < chargers:
        if fleet.poll() is not None:
            raise RuntimeError(f"fleet exited with {fleet.returncode}")
        if time.monotonic() - t0 > timeout_s:
            raise TimeoutError(f"{_fleet_metrics(port)['connected']:.0f}/{chargers} stations connected "
                               f"after {timeout_s:.0f}s")
        time.sleep(0.2)
    return time.monotonic() - t0


def measure(
    cores: int, fleet: Fleet, *, duration_s: float, warmup_s: float, pg: str, idle_s: float = 0.0
) -> dict[str, Any]:
    """One run on fresh parts; every process is killed and the database dropped on the way out.
    ``idle_s``: first measure the cores' CPU with no station connected for that long."""
    tmp = tempfile.mkdtemp(prefix="csms-cluster-bench-")
    load = load_average()
    cluster: Cluster | None = None
    proc: subprocess.Popen[bytes] | None = None
    timer: threading.Timer | None = None
    try:
        t0 = time.monotonic()
        cluster = Cluster(cores, pg, tmp)
        setup_s = time.monotonic() - t0
        idle_pct = 0.0
        if idle_s > 0:
            before = [_cpu_or_zero(pid) for pid in cluster.core_pids()]
            time.sleep(idle_s)
            after = [_cpu_or_zero(pid) for pid in cluster.core_pids()]
            idle_pct = 100 * (sum(after) - sum(before)) / len(after) / idle_s
        scenario = os.path.join(tmp, "scenario.toml")
        Path(scenario).write_text(SCENARIO.format(
            chargers=fleet.chargers, protocol=fleet.protocol, meter_interval=fleet.meter_interval_s))
        report = os.path.join(tmp, "fleet.json")
        metrics_port = free_port()
        cmd = [sys.executable, "-m", "simulators", "run", "--csms", cluster.url, "--scenario", scenario,
               "--duration", "0", "--report", report, "--quiet", "--progress-interval", "0.5",
               "--metrics-port", str(metrics_port), "--workers", str(fleet.workers)]
        with open(os.path.join(tmp, "fleet.log"), "wb") as log:
            proc = spawn(cmd, env=child_env(), cwd=tmp, stdout=log, stderr=subprocess.STDOUT)
        timer = threading.Timer(warmup_s + duration_s + 180, lambda: _kill(proc))
        timer.start()
        wait_port(metrics_port, timeout_s=30, proc=proc)
        connect_s = _wait_connected(metrics_port, fleet.chargers, proc, timeout_s=60)
        time.sleep(warmup_s)
        steal = StealMeter(None)
        pg_start = cluster.pg_pids()
        spread = cluster.stations_per_core()
        start = Sample(cluster, proc, metrics_port, pg_start)
        time.sleep(duration_s)
        pg_end = sorted(set(pg_start) | set(cluster.pg_pids()))
        end = Sample(cluster, proc, metrics_port, pg_end)
        stolen = steal.share()
        for name, p in cluster.procs.items():
            if p.poll() is not None:
                raise RuntimeError(f"{name} exited with {p.returncode}: {cluster.log_tail(name)}")
        proc.send_signal(signal.SIGINT)  # the fleet stops, prints its summary and writes the report
        code = proc.wait(60)
        if not os.path.exists(report):
            log_tail = _tail(os.path.join(tmp, "fleet.log"))
            raise RuntimeError(f"fleet exited with {code} and no report: {log_tail}")
        data = orjson.loads(Path(report).read_bytes())
    finally:
        if timer is not None:
            timer.cancel()
        if proc is not None:
            _kill(proc)
        if cluster is not None:
            cluster.close()
        shutil.rmtree(tmp, ignore_errors=True)
    wall = end.at - start.at
    calls = max(1.0, end.calls - start.calls - (end.errors - start.errors))  # answered
    core_cpu = [e - s for s, e in zip(start.cores, end.cores, strict=True)]
    groups = {
        "cores": sum(core_cpu), "gw": end.gateway - start.gateway, "broker": end.broker - start.broker,
        "pg": sum(max(0.0, end.pg[p] - start.pg.get(p, 0.0)) for p in end.pg),  # a backend gone: 0
        "fleet": end.fleet - start.fleet,
    }
    ours = sum(groups.values())
    busy = end.busy - start.busy

    def us(cpu: float) -> float:
        return round(cpu / calls * 1e6, 1)

    row: dict[str, Any] = {
        "cores": cores, "stations": fleet.chargers,
        "calls_s": round(calls / wall), "p99_ms": round(float(data["latency_ms"]["p99"]), 1),
        "errors": int(data["errors"]["total"]), "to_stations": int(data["inbound_calls"]["total"]),
        **{f"{k}_us": us(v) for k, v in groups.items()},
        "csms_us": us(ours - groups["fleet"]),
        "core_split": "/".join(f"{100 * c / max(1e-9, sum(core_cpu)):.0f}" for c in core_cpu),
        "stations_per_core": "/".join(str(n) for n in spread),
        "busy": round(busy / wall, 2), "others": round(max(0.0, busy - ours) / wall, 2),
        "steal": stolen,
    }
    if idle_s > 0:
        row["core_idle_pct"] = round(idle_pct, 1)
    row.update(setup_s=round(setup_s, 1), connect_s=round(connect_s, 1), load=load)
    return row


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(Exception):
        proc.wait(10)


def _tail(path: str, lines: int = 3) -> str:
    with contextlib.suppress(OSError):
        return " | ".join(Path(path).read_text(errors="replace").strip().splitlines()[-lines:])
    return ""


def run(counts: list[int], fleet: Fleet, *, duration_s: float, warmup_s: float, repeat: int = 1,
        pg: str = PG_DEFAULT, idle_s: float = 0.0) -> list[dict[str, Any]]:
    """Every count of core nodes, ``repeat`` rounds interleaved (1, 2, 3, 1, 2, 3...)."""
    rows = []
    for _ in range(repeat):
        for n in counts:
            rows.append(measure(n, fleet, duration_s=duration_s, warmup_s=warmup_s, pg=pg, idle_s=idle_s))
            print_row(rows[-1])
    return rows


def print_row(row: dict[str, Any]) -> None:
    nodes = f"{row['cores']} core node(s)" if row["cores"] else "one process"
    print(f"  {nodes}: {row['calls_s']:,} calls/s, p99 {row['p99_ms']} ms, "
          f"CSMS {row['csms_us']} us/call, steal {row['steal']:.0%}", flush=True)


def run_quick() -> list[dict[str, Any]]:
    """1, 2 and 3 core nodes, 100 stations, 4 s windows: under a minute on an idle 2-core host."""
    return run([1, 2, 3], Fleet(chargers=100), duration_s=4.0, warmup_s=1.0)


@contextlib.contextmanager
def _timed(title: str) -> Iterator[None]:
    t0 = time.monotonic()
    yield
    print(f"({title}: {time.monotonic() - t0:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.cluster", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="4 s windows, 100 stations (under a minute)")
    p.add_argument("--cores", type=int, nargs="+", default=[1, 2, 3],
                   help="core node counts to run; 0: one `csms serve` process without broker or gateway")
    p.add_argument("--chargers", type=int, default=200, help="stations in the fleet (one EVSE each)")
    p.add_argument("--meter-interval", type=float, default=0.05,
                   help="seconds between a station's meter values (short: as fast as answered)")
    p.add_argument("--protocol", default="mixed", choices=["1.6", "2.0.1", "mixed"])
    p.add_argument("--fleet-workers", type=int, default=1, help="csms-sim processes")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds per run")
    p.add_argument("--idle", type=float, default=3.0,
                   help="seconds the core nodes' CPU is measured before the fleet connects (0: skip)")
    p.add_argument("--warmup", type=float, default=5.0, help="seconds of load before measuring")
    p.add_argument("--repeat", type=int, default=1, help="rounds over --cores, interleaved")
    p.add_argument("--pg", default=PG_DEFAULT, help="PostgreSQL server URL without a database (trust auth)")
    args = p.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C: every run's ``finally`` kills its processes and drops its database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    print(f"python -m bench.cluster: load average {load_average()}, {os.cpu_count()} CPUs", flush=True)
    with _timed("total"):
        if args.quick:
            rows = run_quick()
        else:
            fleet = Fleet(args.chargers, args.meter_interval, args.protocol, args.fleet_workers)
            rows = run(args.cores, fleet, duration_s=args.duration, warmup_s=args.warmup, repeat=args.repeat,
                       pg=args.pg, idle_s=args.idle)
        print_table("core nodes behind one gateway: calls/s, p99, CPU per call (us) of each group", rows)


if __name__ == "__main__":
    main()
